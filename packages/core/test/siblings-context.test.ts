/**
 * Two small core APIs the ORM needs (issues #8 item 6 and #9): keys whose conflict mode is part of
 * the key (SIBLINGS_PREFIX), and a join of opaque context tokens (joinContexts).
 */
import { describe, expect, it } from 'vitest'
import { SIBLINGS_PREFIX, validateConflicts } from '../src/conflict.js'
import { CausalContext, joinContexts } from '../src/context.js'
import { CausewayError } from '../src/errors.js'
import { createSite } from '../src/site.js'

function codeOf(f: () => unknown): string | undefined {
  try {
    f()
    return undefined
  } catch (e) {
    if (e instanceof CausewayError) return e.code
    throw e
  }
}

describe('SIBLINGS_PREFIX', () => {
  const merge = (a: unknown, b: unknown): never => (a ?? b) as never
  it('keys under it keep siblings whatever the configuration', () => {
    for (const opt of [undefined, 'lww', 'return-all', merge, { default: 'lww', prefixes: { '~': 'lww', '': merge } }] as const) {
      const r = validateConflicts(opt)
      expect(r(`${SIBLINGS_PREFIX}orm/items/x`)).toBe('return-all')
    }
    expect(validateConflicts('lww')('siblings/x')).toBe('lww')
    expect(validateConflicts(merge)('~sibling/x')).toBe(merge)
  })
  it('refuses configuring a prefix under it', () => {
    expect(codeOf(() => validateConflicts({ prefixes: { [`${SIBLINGS_PREFIX}a/`]: 'lww' } }))).toBe('INVALID_OPTIONS')
    expect(codeOf(() => validateConflicts({ prefixes: { [SIBLINGS_PREFIX]: 'return-all' } }))).toBe('INVALID_OPTIONS')
  })
  it('a site opened with lww keeps concurrent writes of such a key as siblings', async () => {
    const site = await createSite({ id: 's', storage: 'memory', conflicts: 'lww' })
    try {
      const key = `${SIBLINGS_PREFIX}k`
      await site.session().put(key, 1)
      await site.session().put(key, 2) // the second session never read the first value: concurrent
      const e = await site.session().get(key)
      expect(e?.siblings?.map((s) => s.value).sort()).toEqual([1, 2])
      expect(site.conflictMode(key)).toBe('return-all')
    } finally {
      await site.close()
    }
  })
})

describe('joinContexts', () => {
  const token = (deps: Array<[string, number]>, maxTime: number, observed: string[] = []): string => {
    const c = new CausalContext()
    for (const [s, q] of deps) c.addDep(s, q)
    c.maxTime = maxTime
    for (const k of observed) c.observed.set(k, [{ time: 1, site: 'a' }])
    return c.encode()
  }
  it('is the union of the causal pasts, without key observations', () => {
    const j = CausalContext.decode(joinContexts([token([['a/0', 3], ['b/1', 2]], 10, ['k']), token([['a/0', 5]], 7), token([], 12)]))
    expect(Object.fromEntries(j.deps)).toEqual({ 'a/0': 5, 'b/1': 2 })
    expect(j.maxTime).toBe(12)
    expect(j.observed.size).toBe(0)
    expect(CausalContext.decode(joinContexts([])).deps.size).toBe(0)
  })
  it('refuses a token that does not decode', () => {
    expect(codeOf(() => joinContexts([token([], 1), 'cw1.garbage']))).toBe('INVALID_CONTEXT')
    expect(codeOf(() => joinContexts(['nope']))).toBe('INVALID_CONTEXT')
  })
  it('a session continued from a join sees the writes of every joined session', async () => {
    const site = await createSite({ id: 'j', storage: 'memory' })
    try {
      const s1 = site.session()
      const s2 = site.session()
      await s1.put('x', 1)
      await s2.put('y', 2)
      const j = CausalContext.decode(joinContexts([s1.context(), s2.context()]))
      const d1 = CausalContext.decode(s1.context()).deps
      const d2 = CausalContext.decode(s2.context()).deps
      for (const [s, q] of [...d1, ...d2]) expect(j.deps.get(s)).toBeGreaterThanOrEqual(q)
      const s3 = site.session({ context: joinContexts([s1.context(), s2.context()]) })
      expect((await s3.getMany(['x', 'y'])).size).toBe(2)
    } finally {
      await site.close()
    }
  })
})
