import { describe, expect, it } from 'vitest'
import { validateConfig } from '../src/config.js'
import { formatStatus } from '../src/status.js'

describe('site.json scopes and incompatible peers in status', () => {
  const base = { id: 'paris', dir: './data', http: { port: 8101 } }
  it('scopes are validated and passed through', () => {
    expect(validateConfig({ ...base, scopes: { 'eu/': ['paris', 'lyon'] } }, '/x/site.json').scopes).toEqual({ 'eu/': ['paris', 'lyon'] })
    for (const bad of [[], { 'eu/': [] }, { 'eu/': ['Bad Id'] }, { 'eu/': 'paris' }, { '': ['paris'] }]) {
      expect(() => validateConfig({ ...base, scopes: bad }, '/x/site.json')).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }))
    }
  })
  it('causeway status prints why a peer is incompatible', () => {
    const out = formatStatus({ id: 'paris', pendingIn: 0, peers: [{ id: 'lyon', state: 'incompatible', pendingOut: 3, reason: "the peer's conflicts configuration differs" }] })
    expect(out).toMatch(/lyon +incompatible/)
    expect(out).toMatch(/lyon: incompatible: the peer's conflicts configuration differs/)
  })
})
