import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { encode } from '../src/codec.js'
import { CausewayError } from '../src/errors.js'
import { decodeFrame, encodeFrame, type Frame } from '../src/protocol.js'

/** The membership frames (#11: removed, bsreq, bschunk) decode only what they encode, as an attacker sees them. */
const siteArb = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,10}$/)
const streamArb = fc.tuple(siteArb, fc.nat({ max: 63 })).map(([s, i]) => `${s}/${i}`)
const vectorArb = fc.array(fc.tuple(streamArb, fc.nat({ max: 1e9 })), { maxLength: 5 })
const siblingArb = fc.tuple(fc.nat({ max: 2 ** 50 }), siteArb, streamArb, fc.integer({ min: 1, max: 1e9 }), fc.option(fc.uint8Array({ maxLength: 30 }), { nil: null }))
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.array(siteArb, { maxLength: 5 }).map((sites) => ({ t: 'removed' as const, sites })),
  fc.tuple(fc.nat({ max: 64 }), fc.string({ maxLength: 40 })).map(([shard, after]) => ({ t: 'bsreq' as const, shard, after })),
  fc
    .record({
      reqShard: fc.nat({ max: 64 }),
      reqAfter: fc.string({ maxLength: 20 }),
      before: vectorArb,
      after: vectorArb,
      states: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.array(siblingArb, { maxLength: 3 })), { maxLength: 5 }),
      nextShard: fc.nat({ max: 64 }),
      nextAfter: fc.string({ maxLength: 20 }),
      done: fc.boolean(),
    })
    .map((r) => ({ t: 'bschunk' as const, ...r, states: r.states as Array<[string, unknown[]]> })),
)

/** Bytes as plain arrays: the decoder hands out Buffer views, which toEqual tells apart from Uint8Array. */
const plain = (x: unknown): unknown => (x instanceof Uint8Array ? ['bytes', ...x] : Array.isArray(x) ? x.map(plain) : x !== null && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)])) : x)

const onlyInvalidFrame = (fn: () => unknown) => {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(CausewayError)
    expect((e as CausewayError).code).toBe('INVALID_FRAME')
  }
}

describe('membership frames', () => {
  it('round-trip', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        expect(plain(decodeFrame(encodeFrame(f)))).toEqual(plain(f))
      }),
      { numRuns: 500 },
    )
  })

  it('mutated frames decode to a valid frame or throw INVALID_FRAME, nothing else', () => {
    fc.assert(
      fc.property(frameArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (f, muts) => {
        const b = new Uint8Array(encodeFrame(f))
        for (const [i, x] of muts) b[i % b.length] = x
        onlyInvalidFrame(() => decodeFrame(b))
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses malformed fields', () => {
    const bad = [
      [6, ['Not A Site']],
      [6, 'a'],
      [7, -1, ''],
      [7, 0, 5],
      [7, 1.5, ''],
      [8, 0, '', [], [], [['k', [[1, 'a', 'a/0', 0, null]]]], 0, '', false], // seq 0
      [8, 0, '', [], [], [['k', [[1, 'a', 'not-a-stream', 1, null]]]], 0, '', false],
      [8, 0, '', [], [], [['k', [[1, 'a', 'a/0', 1, 'text']]]], 0, '', false], // value must be bytes or null
      [8, 0, '', [], [], [['', []]], 0, '', false], // empty key
      [8, 0, '', [], [], [], 0, '', 'yes'],
      [8, 0, '', [], [], [], 0, ''],
    ]
    for (const x of bad) expect(() => decodeFrame(encode(x))).toThrow(CausewayError)
  })
})
