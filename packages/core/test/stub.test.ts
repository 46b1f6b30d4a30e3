import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { decodeEntry, encodeEntry, type WriteEntry } from '../src/entry.js'
import { decodeStubRun, isStubRun, StubRunBuilder } from '../src/stub.js'
import { encode } from '../src/codec.js'

const stub = (seq: number, deps: WriteEntry['deps'] = [], holders = ['a', 'b']): WriteEntry => ({ stream: 'a/0', seq, time: 100 + seq, site: 'a', deps, ops: [], holders })

function records(es: WriteEntry[]): Uint8Array[] {
  const b = new StubRunBuilder()
  const out: Uint8Array[] = []
  for (const e of es) {
    const r = b.add(e)
    if (r) out.push(r)
  }
  const r = b.flush()
  if (r) out.push(r)
  return out
}

function expand(rs: Uint8Array[]): WriteEntry[] {
  return rs.flatMap((r) => (isStubRun(r) ? decodeStubRun(r) : [decodeEntry(r, 1024)]))
}

describe('scope stub runs', () => {
  it('consecutive stubs collapse into one record; the first keeps the deps, later ones need none', () => {
    const rs = records([stub(3, [['x/0', 5]]), stub(4, [['a/0', 3]]), stub(5, [['x/0', 4]]), stub(6)])
    expect(rs.length).toBe(1)
    const es = expand(rs)
    expect(es.map((e) => e.seq)).toEqual([3, 4, 5, 6])
    expect(es[0]!.deps).toEqual([['x/0', 5]])
    expect(es.slice(1).every((e) => e.deps.length === 0 && e.holders!.join() === 'a,b' && e.ops.length === 0)).toBe(true)
    expect(es.every((e) => e.time === 106)).toBe(true)
  })

  it('a stub with a dependency the run does not cover starts a new run (no wait added, no cycle)', () => {
    const rs = records([stub(1, [['x/0', 5]]), stub(2, [['x/0', 6]]), stub(3), stub(4, [], ['a', 'c']), stub(6)])
    expect(rs.length).toBe(4)
    const es = expand(rs)
    expect(es.map((e) => e.seq)).toEqual([1, 2, 3, 4, 6])
    expect(es[1]!.deps).toEqual([['x/0', 6]])
    expect(es[3]!.holders).toEqual(['a', 'c'])
  })

  it('a single stub is an ordinary kind-3 entry that round-trips', () => {
    const e = stub(7, [['x/0', 1]])
    expect(decodeEntry(encodeEntry(e), 1024)).toEqual(e)
  })

  it('hostile run records never decode into anything unbounded or malformed', () => {
    const good = [4, 'a/0', 1, 3, 10, 'a', [], ['a']]
    expect(decodeStubRun(encode(good)).length).toBe(3)
    for (const bad of [
      [4, 'a/0', 3, 1, 10, 'a', [], ['a']],
      [4, 'a/0', 1, 1, 10, 'a', [], ['a']],
      [4, 'a/0', 1, 1_000_000, 10, 'a', [], ['a']],
      [4, 'a/0', 1, 3, 10, 'b', [], ['a']],
      [4, 'a/0', 1, 3, 10, 'a', [['x', 1]], ['a']],
      [4, 'a/0', 1, 3, 10, 'a', [], ['A!']],
      [4, 'a/0', 1, 3, 10, 'a', []],
    ]) {
      expect(() => decodeStubRun(encode(bad))).toThrow(expect.objectContaining({ code: 'INVALID_FRAME' }))
    }
    fc.assert(
      fc.property(fc.array(fc.anything(), { maxLength: 9 }), (xs) => {
        try {
          const es = decodeStubRun(encode([4, ...xs]))
          expect(es.length).toBeLessThanOrEqual(4096)
        } catch (e) {
          expect((e as { code?: string }).code).toBe('INVALID_FRAME')
        }
      }),
    )
  })
})
