import { afterEach, describe, expect, it } from 'vitest'
import { decodeFrame, encodeFrame, validateConflicts } from '@causeway/core'
import { cluster, eventually } from './helpers.js'

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanup) await c()
  cleanup = []
})

function logs() {
  const errors: Array<{ obj: object; msg?: string }> = []
  return {
    errors,
    logger: { debug() {}, info() {}, warn() {}, error: (obj: object, msg?: string) => errors.push({ obj, msg }) },
  }
}

describe('configuration agreement', () => {
  it("refuses a peer with other conflicts on both sides: no writes either way, 'incompatible' with a reason, logged once", async () => {
    const la = logs()
    const lb = logs()
    const c = await cluster([])
    cleanup.push(() => c.close())
    const a = await c.open('a', { conflicts: 'lww', logger: la.logger })
    const b = await c.open('b', { conflicts: 'return-all', logger: lb.logger })
    await a.session().put('x', 'from-a')
    await b.session().put('y', 'from-b')
    await eventually(() => a.status().peers[0]?.state === 'incompatible' && b.status().peers[0]?.state === 'incompatible', 5000, 'incompatible')
    // Give replication ample chances (heartbeats are 50 ms) to leak anything.
    await new Promise((r) => setTimeout(r, 400))
    await a.session().put('x2', 'later')
    await new Promise((r) => setTimeout(r, 200))
    expect(await b.session().get('x')).toBeUndefined()
    expect(await b.session().get('x2')).toBeUndefined()
    expect(await a.session().get('y')).toBeUndefined()
    for (const s of [a, b]) {
      const p = s.status().peers[0]!
      expect(p.state).toBe('incompatible')
      expect(typeof p.reason).toBe('string')
      expect(p.reason).toMatch(/conflicts/)
    }
    const refusals = (l: ReturnType<typeof logs>) => l.errors.filter((e) => /configuration differs/.test(e.msg ?? '')).length
    expect(refusals(la)).toBe(1)
    expect(refusals(lb)).toBe(1)
  })

  it('refuses a peer with other scopes', async () => {
    const c = await cluster([])
    cleanup.push(() => c.close())
    const a = await c.open('a', { scopes: { 'eu/': ['a', 'b'] } })
    const b = await c.open('b', { scopes: { 'eu/': ['a'] } })
    await a.session().put('k', 1)
    await eventually(() => a.status().peers[0]?.state === 'incompatible' && b.status().peers[0]?.state === 'incompatible', 5000, 'incompatible')
    expect(a.status().peers[0]!.reason).toMatch(/scopes/)
    await new Promise((r) => setTimeout(r, 300))
    expect(await b.session().get('k')).toBeUndefined()
  })

  it('identical configurations replicate (merge functions by name, or by { merge, id })', async () => {
    const c = await cluster([])
    cleanup.push(() => c.close())
    const max = (x: unknown, y: unknown) => ((x as number) > (y as number) ? x : y) as number
    const conflicts = { default: 'lww' as const, prefixes: { 'n/': max, 'm/': { merge: (x: unknown) => x as number, id: 'first-v1' } } }
    const a = await c.open('a', { conflicts, scopes: { 'eu/': ['a', 'b'] } })
    // Same ids, other function objects (as at another process): still compatible.
    const b = await c.open('b', { conflicts: { prefixes: { 'm/': { merge: (x: unknown) => x as number, id: 'first-v1' }, 'n/': function max() { return 0 } } }, scopes: { 'eu/': ['b', 'a'] } })
    await a.session().put('eu/x', 'v')
    await eventually(async () => (await b.session().get('eu/x'))?.value === 'v', 5000, 'replicated')
    expect(a.status().peers[0]!.state).not.toBe('incompatible')
    expect(b.status().peers[0]!.reason).toBeUndefined()
  })

  it('a merge function given another id is incompatible', async () => {
    const c = await cluster([])
    cleanup.push(() => c.close())
    const f = (x: unknown) => x as number
    const a = await c.open('a', { conflicts: { merge: f, id: 'v1' } })
    const b = await c.open('b', { conflicts: { merge: f, id: 'v2' } })
    await eventually(() => a.status().peers[0]?.state === 'incompatible' && b.status().peers[0]?.state === 'incompatible', 5000, 'incompatible')
  })

  it('validateConflicts accepts { merge, id } and refuses malformed ones', () => {
    const r = validateConflicts({ prefixes: { 'a/': { merge: (x: unknown) => x as number, id: 'x' } } })
    expect(typeof r('a/k')).toBe('function')
    expect(r('~siblings/t')).toBe('return-all')
    for (const bad of [{ merge: 1, id: 'x' }, { merge: () => 1, id: '' }, { merge: () => 1, id: 'x', extra: 1 }]) {
      expect(() => validateConflicts({ prefixes: { 'a/': bad } })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    }
  })

  it('hello carries the digest; a malformed digest is INVALID_FRAME; an old hello without one decodes', () => {
    const h = { t: 'hello' as const, v: 1, site: 'a', accepts: true, sends: true, rv: [], ups: [], cfg: 'c=0123456789abcdef;s=0123456789abcdef' }
    expect(decodeFrame(encodeFrame(h))).toEqual(h)
    const { cfg: _c, ...old } = h
    expect(decodeFrame(encodeFrame(old))).toEqual(old)
    expect(() => decodeFrame(encodeFrame({ ...h, cfg: 'nope' }))).toThrow(expect.objectContaining({ code: 'INVALID_FRAME' }))
  })
})
