import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { applyToState, viewOf, validateConflicts, type IncomingWrite, type KeyState } from '../src/conflict.js'
import { encodeValue } from '../src/codec.js'
import type { ConflictMode, Value } from '../src/types.js'

const enc = (v: Value): Uint8Array => encodeValue(v, 1 << 20)

/** n concurrent writes (distinct versions, nobody saw anybody): any delivery order must converge. */
const concurrentWrites = fc
  .uniqueArray(fc.record({ time: fc.integer({ min: 1, max: 50 }), site: fc.constantFrom('a', 'b', 'c', 'd') }), {
    minLength: 1,
    maxLength: 6,
    selector: (v) => `${v.time}/${v.site}`,
  })
  .chain((versions) =>
    fc.tuple(
      fc.constant(versions),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constant(null)), { minLength: versions.length, maxLength: versions.length }),
    ),
  )
  .map(([versions, vals]) =>
    versions.map(
      (v, i): IncomingWrite => ({ ...v, stream: `${v.site}/0`, seq: i + 1, value: vals[i] === null ? undefined : enc(vals[i]!), supersedes: [] }),
    ),
  )

function applyAll(ws: IncomingWrite[], mode: ConflictMode): KeyState {
  let s: KeyState = []
  for (const w of ws) s = applyToState(s, w, mode)
  return s
}

const shuffled = <T,>(xs: T[]) => fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length })

describe('conflict handlers converge in any delivery order', () => {
  const modes: Array<[string, ConflictMode]> = [
    ['lww', 'lww'],
    ['return-all', 'return-all'],
    ['merge(max)', (a: Value, b: Value) => Math.max(a as number, b as number)],
    ['merge(set union)', (a: Value, b: Value) => [...new Set([...(Array.isArray(a) ? a : [a]), ...(Array.isArray(b) ? b : [b])])].sort() as Value],
  ]
  for (const [name, mode] of modes) {
    it(`${name}: same view for every permutation, with duplicates`, () => {
      fc.assert(
        fc.property(concurrentWrites.chain((ws) => fc.tuple(fc.constant(ws), shuffled(ws), shuffled([...ws, ...ws]))), ([ws, p1, p2]) => {
          const v0 = viewOf('k', applyAll(ws, mode), mode)
          expect(viewOf('k', applyAll(p1, mode), mode)).toEqual(v0)
          expect(viewOf('k', applyAll(p2, mode), mode)).toEqual(v0)
        }),
      )
    })
  }

  it('lww: the highest version wins, tombstone included', () => {
    fc.assert(
      fc.property(concurrentWrites, (ws) => {
        const top = [...ws].sort((x, y) => (x.time - y.time) || (x.site < y.site ? -1 : x.site > y.site ? 1 : 0)).pop()!
        const v = viewOf('k', applyAll(ws, 'lww'), 'lww')
        if (top.value === undefined) expect(v).toBeUndefined()
        else expect(v!.version).toEqual({ time: top.time, site: top.site })
      }),
    )
  })

  it('return-all: every concurrent live value is a sibling, sorted by version descending', () => {
    fc.assert(
      fc.property(concurrentWrites, (ws) => {
        const v = viewOf('k', applyAll(ws, 'return-all'), 'return-all')
        const live = ws.filter((w) => w.value !== undefined)
        if (live.length === 0) {
          expect(v).toBeUndefined()
          return
        }
        const expected = live.map((w) => ({ time: w.time, site: w.site })).sort((x, y) => (y.time - x.time) || (y.site < x.site ? -1 : 1))
        expect(v!.version).toEqual(expected[0])
        if (live.length === 1) expect(v!.siblings).toBeUndefined()
        else expect(v!.siblings!.map((s) => s.version)).toEqual(expected)
      }),
    )
  })

  it('return-all: a write supersedes exactly the versions its session observed', () => {
    const w = (time: number, site: string, value: Value, supersedes: IncomingWrite['supersedes'] = []): IncomingWrite => ({ time, site, stream: `${site}/0`, seq: time, value: enc(value), supersedes })
    let s = applyToState([], w(1, 'a', 'x'), 'return-all')
    s = applyToState(s, w(2, 'b', 'y'), 'return-all')
    s = applyToState(s, w(3, 'c', 'z'), 'return-all')
    // Saw x and y only: z stays a sibling.
    s = applyToState(s, w(4, 'a', 'xy', [{ time: 1, site: 'a' }, { time: 2, site: 'b' }]), 'return-all')
    expect(viewOf('k', s, 'return-all')!.siblings!.map((x) => x.value)).toEqual(['xy', 'z'])
  })

  it('return-all: a delete hides what it saw; a concurrent put survives', () => {
    const live: IncomingWrite = { time: 1, site: 'a', stream: 'a/0', seq: 1, value: enc('v1'), supersedes: [] }
    const del: IncomingWrite = { time: 5, site: 'b', stream: 'b/0', seq: 1, value: undefined, supersedes: [{ time: 1, site: 'a' }] }
    const concurrent: IncomingWrite = { time: 3, site: 'c', stream: 'c/0', seq: 1, value: enc('v2'), supersedes: [{ time: 1, site: 'a' }] }
    for (const order of [[live, del, concurrent], [live, concurrent, del]]) {
      const s = applyAll(order, 'return-all')
      const v = viewOf('k', s, 'return-all')!
      expect(v.value).toBe('v2')
      expect(v.siblings).toBeUndefined()
    }
    expect(viewOf('k', applyAll([live, del], 'return-all'), 'return-all')).toBeUndefined()
  })

  it('merge functions are applied to concurrent values only', () => {
    let calls = 0
    const merge = (a: Value, b: Value): Value => {
      calls++
      return (a as number) + (b as number)
    }
    const w1: IncomingWrite = { time: 1, site: 'a', stream: 'a/0', seq: 1, value: enc(1), supersedes: [] }
    const w2: IncomingWrite = { time: 2, site: 'a', stream: 'a/0', seq: 2, value: enc(10), supersedes: [{ time: 1, site: 'a' }] }
    expect(viewOf('k', applyAll([w1, w2], merge), merge)!.value).toBe(10)
    expect(calls).toBe(0)
  })

  it('validateConflicts: longest prefix wins; bad configs are INVALID_OPTIONS', () => {
    const r = validateConflicts({ default: 'lww', prefixes: { 'a/': 'return-all', 'a/b/': 'lww' } })
    expect(r('a/x')).toBe('return-all')
    expect(r('a/b/x')).toBe('lww')
    expect(r('z')).toBe('lww')
    for (const bad of ['nope', { default: 'x' }, { prefixes: { a: 3 } }, { extra: 1 }, 5]) {
      expect(() => validateConflicts(bad)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    }
  })
})
