import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { LamportClock } from '../src/clock.js'
import { CausalContext, crc32, MAX_OBSERVED_KEYS, MAX_TOKEN_DEPS, MAX_VERSIONS_PER_KEY } from '../src/context.js'
import { encode } from '../src/codec.js'
import { CausewayError } from '../src/errors.js'

describe('LamportClock', () => {
  it('never goes backwards, even when the wall clock does', () => {
    let now = 1000
    const c = new LamportClock('a', { nowMs: () => now })
    const t1 = c.next()
    now = 500
    const t2 = c.next()
    expect(t2).toBeGreaterThan(t1)
  })
  it('is seeded by physical time', () => {
    const c = new LamportClock('a', { nowMs: () => 123456 })
    expect(c.next()).toBe(123456 * 1000) // microseconds of physical time
  })
  it('always exceeds every time it has observed', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant<'tick'>('tick'), fc.nat({ max: 1e12 })), { maxLength: 50 }), (ops) => {
        const c = new LamportClock('a', { nowMs: () => 0 }, 0, 1e12) // every observed time within the skew bound
        let maxSeen = 0
        let last = -1
        for (const op of ops) {
          if (op === 'tick') {
            const t = c.next()
            expect(t).toBeGreaterThan(maxSeen)
            expect(t).toBeGreaterThan(last)
            last = maxSeen = t
          } else {
            c.observe(op)
            maxSeen = Math.max(maxSeen, op)
          }
        }
      }),
    )
  })
  it('refuses (CLOCK_SKEW) and ignores an outside time beyond physical time + maxSkewMs; restore() is trusted', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (nowMs, skewMs, ahead) => {
        const c = new LamportClock('a', { nowMs: () => nowMs }, 0, skewMs)
        const before = c.current
        const limit = (nowMs + skewMs) * 1000 // Lamport times count microseconds
        const t = Math.min(Number.MAX_SAFE_INTEGER, limit + ahead)
        let code: unknown
        try {
          c.observe(t)
        } catch (e) {
          code = (e as { code?: string }).code
        }
        expect(code).toBe('CLOCK_SKEW')
        expect(c.current).toBe(before)
        expect(c.admits(limit)).toBe(true)
        c.observe(limit)
        expect(c.current).toBe(Math.max(before, limit))
        c.restore(t) // a site's own persisted time: a restart must never fail on it
        expect(c.current).toBe(t)
      }),
    )
  })
  it('honours a floor (restart) and atLeast (session context)', () => {
    const c = new LamportClock('a', { nowMs: () => 0 }, 50)
    expect(c.next()).toBe(51)
    expect(c.next(100)).toBe(100)
    expect(c.tick()).toEqual({ time: 101, site: 'a' })
  })
})

describe('CausalContext', () => {
  it('round-trips through its token', () => {
    const c = new CausalContext()
    c.observe('k1', [{ time: 5, site: 'a' }, { time: 7, site: 'b' }], [['a/0', 3], ['b/1', 9]])
    c.addDep('c/2', 4)
    const d = CausalContext.decode(c.encode())
    expect([...d.deps]).toEqual([...c.deps])
    expect(d.maxTime).toBe(7)
    expect(d.observed.get('k1')).toEqual([{ time: 5, site: 'a' }, { time: 7, site: 'b' }])
  })
  it('keeps one dependency per stream: the highest seq', () => {
    const c = new CausalContext()
    c.addDep('a/0', 3)
    c.addDep('a/0', 2)
    c.addDep('a/0', 8)
    expect(c.depList()).toEqual([['a/0', 8]])
  })
  it('after a write, the write is the only nearest dependency', () => {
    const c = new CausalContext()
    c.addDep('a/0', 3)
    c.addDep('b/0', 3)
    c.afterWrite(['c/1', 10], ['k'], { time: 99, site: 'c' })
    expect(c.depList()).toEqual([['c/1', 10]])
    expect(c.observed.get('k')).toEqual([{ time: 99, site: 'c' }])
    expect(c.maxTime).toBe(99)
  })
  it('bounds the observed-versions memory', () => {
    const c = new CausalContext()
    for (let i = 0; i < MAX_OBSERVED_KEYS + 10; i++) c.observe(`k${i}`, [{ time: i, site: 'a' }], [])
    expect(c.observed.size).toBe(MAX_OBSERVED_KEYS)
    expect(c.observed.has('k0')).toBe(false)
    expect(c.observed.has(`k${MAX_OBSERVED_KEYS + 9}`)).toBe(true)
  })
  it('rejects tokens that do not decode with INVALID_CONTEXT', () => {
    const good = new CausalContext()
    good.addDep('a/0', 1)
    const token = good.encode()
    const bad = ['', 'garbage', 'cw1.', 'cw1.!!!!', token.slice(0, -3), token.slice(0, 10) + (token[10] === 'A' ? 'B' : 'A') + token.slice(11), 42, null, {}]
    for (const t of bad) {
      try {
        CausalContext.decode(t)
        expect.unreachable(`decoded ${String(t)}`)
      } catch (e) {
        expect(e).toBeInstanceOf(CausewayError)
        expect((e as CausewayError).code).toBe('INVALID_CONTEXT')
      }
    }
  })
  it('never throws anything but INVALID_CONTEXT on random tokens', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.base64String().map((s) => 'cw1.' + s), fc.uint8Array().map((b) => 'cw1.' + Buffer.from(b).toString('base64url'))), (t) => {
        try {
          CausalContext.decode(t)
        } catch (e) {
          expect((e as CausewayError).code).toBe('INVALID_CONTEXT')
        }
      }),
    )
  })

  // A token is client input: crafted payloads with a valid checksum must be bounded and checked.
  const tokenOf = (payload: unknown): string => {
    const body = Buffer.from(encode(payload))
    const out = Buffer.alloc(body.length + 4)
    out.writeUInt32BE(crc32(body), 0)
    body.copy(out, 4)
    return 'cw1.' + out.toString('base64url')
  }
  const codeOf = (t: string): string => {
    try {
      CausalContext.decode(t)
      return 'accepted'
    } catch (e) {
      if (!(e instanceof CausewayError)) throw e
      return e.code
    }
  }
  it('accepts a crafted token of the right shape (the helper builds real tokens)', () => {
    expect(codeOf(tokenOf([1, [['a/0', 2]], 5, [['k', [[5, 'a']]]]]))).toBe('accepted')
  })
  it('bounds every list in a token and checks observed keys like request keys', () => {
    const deps = Array.from({ length: MAX_TOKEN_DEPS + 1 }, (_, i) => [`s${i}/0`, 1])
    const observed = Array.from({ length: MAX_OBSERVED_KEYS + 1 }, (_, i) => [`k${i}`, [[1, 'a']]])
    const versions = Array.from({ length: MAX_VERSIONS_PER_KEY + 1 }, (_, i) => [i, 'a'])
    const bad = [
      [1, deps, 0, []],
      [1, [], 0, observed],
      [1, [], 0, [['k', versions]]],
      [1, [], 0, [['', [[1, 'a']]]]],
      [1, [], 0, [['x'.repeat(2000), [[1, 'a']]]]],
      [1, [], 0, [['a\ud800', [[1, 'a']]]]],
      [1, [], 0, [['k', [[1, 'a']]], ['k', [[2, 'a']]]]],
      [1, [], 0, [['k', [[1, 'a', 'extra']]]]],
      [1, [['a/0', 1, 9]], 0, []],
      [1, [], 0, [], 'extra'],
    ]
    for (const p of bad) expect(codeOf(tokenOf(p))).toBe('INVALID_CONTEXT')
  })
  it('deeply nested token bodies are INVALID_CONTEXT, not a stack overflow', () => {
    const body = Buffer.alloc(20_001, 0x91)
    body[20_000] = 0xc0
    const out = Buffer.alloc(body.length + 4)
    out.writeUInt32BE(crc32(body), 0)
    body.copy(out, 4)
    expect(codeOf('cw1.' + out.toString('base64url'))).toBe('INVALID_CONTEXT')
  })
})
