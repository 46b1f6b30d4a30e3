import { describe, expect, it } from 'vitest'
import { cluster, eventually } from './helpers.js'

// Issue 8.3: a value with a `__proto__` own key came back (locally and on every replica) as `__proto_`.
describe('values replicate exactly', () => {
  it('a __proto__ key survives replication unchanged and pollutes nothing', async () => {
    const c = await cluster(['a', 'b'])
    try {
      const value = JSON.parse('{"__proto__":{"polluted":true},"n":[{"__proto__":"x"}]}') as Record<string, unknown>
      await c.sites.a!.session().put('k', value)
      const got = await eventually(async () => (await c.sites.b!.session().get('k'))?.value, 10_000, 'replicated value')
      expect(JSON.stringify(got)).toBe(JSON.stringify(value))
      expect(Object.getOwnPropertyNames(got)).toEqual(['__proto__', 'n'])
      expect(Object.getPrototypeOf(got)).toBe(Object.prototype)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    } finally {
      await c.close()
    }
  })
})
