import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { decodeValue, encode, encodeValue } from '../src/codec.js'
import { decodeEntry, encodeEntry } from '../src/entry.js'
import { decodeFrame, encodeFrame } from '../src/protocol.js'
import { CausewayError } from '../src/errors.js'

const valueArb = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
    fc.integer(),
    fc.string(),
    fc.uint8Array({ maxLength: 20 }),
    fc.date({ noInvalidDate: true }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('v'), { maxKeys: 4 }),
  ),
})).v

describe('values', () => {
  it('store -0 as 0 (as JSON does); documented in docs/api.md', () => {
    expect(Object.is(decodeValue(encodeValue(-0, 100)), 0)).toBe(true)
  })
  it('round-trip exactly', () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        expect(decodeValue(encodeValue(v, 1 << 20))).toEqual(v)
      }),
    )
  })
})

describe('hostile bytes', () => {
  const entry = encodeEntry({ stream: 'a/0', seq: 1, time: 5, site: 'a', deps: [['b/1', 3]], ops: [{ key: 'k', value: encodeValue({ x: 1 }, 100), supersedes: [] }] })
  const frames = [
    encodeFrame({ t: 'writes', e: [entry] }),
    encodeFrame({ t: 'hello', v: 1, site: 'a', accepts: true, sends: true, rv: [['a/0', 3]], ups: ['b'] }),
    encodeFrame({ t: 'ack', rv: [['a/0', 3]] }),
    encodeFrame({ t: 'nack', stream: 'a/0', have: 2 }),
  ]
  const mutate = (b: Uint8Array) =>
    fc.array(fc.tuple(fc.nat({ max: Math.max(0, b.length - 1) }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((muts) => {
      const c = new Uint8Array(b)
      for (const [i, x] of muts) c[i] = x
      return c
    })

  const onlyTyped = (fn: () => unknown) => {
    try {
      fn()
    } catch (e) {
      expect(e).toBeInstanceOf(CausewayError)
      expect(['INVALID_FRAME']).toContain((e as CausewayError).code)
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.prototype).not.toHaveProperty('x')
  }

  it('valid frames and entries decode', () => {
    expect(decodeFrame(frames[0]!).t).toBe('writes')
    expect(decodeEntry(entry, 1000).ops[0]!.key).toBe('k')
  })
  it('random and mutated frames never crash the decoder nor pollute prototypes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), ...frames.map(mutate), mutate(entry)), (b) => {
        onlyTyped(() => decodeFrame(b))
        onlyTyped(() => decodeEntry(b, 1000))
        onlyTyped(() => decodeValue(b))
      }),
      { numRuns: 2000 },
    )
  })
  it('rejects __proto__ keys, extensions and non-Values smuggled in a value', () => {
    const evil = [
      encode(new Set([1])),
      encode(new Map([[1, 2]])),
      encode(10n),
      encode(new Float64Array(2)),
      encode(new Error('x')),
      Uint8Array.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x78, 0x01]),
    ]
    for (const b of evil) onlyTyped(() => decodeValue(b))
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })
  it('rejects entries whose origin differs from the stream', () => {
    const forged = encodeEntry({ stream: 'a/0', seq: 1, time: 5, site: 'b', deps: [], ops: [{ key: 'k', value: undefined, supersedes: [] }] })
    onlyTyped(() => decodeEntry(forged, 1000))
    expect(() => decodeEntry(forged, 1000)).toThrow()
  })
})
