import { describe, expect, it, vi } from 'vitest'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { decodeStored, decodeValue, encode, encodeValue } from '../src/codec.js'
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

// Issue #14 / #8.3: each of these failed (untyped error, accepted, altered or slow path) before the
// bounded reader replaced msgpackr's unpack.
describe('decoder holes (issue 14)', () => {
  const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'))
  const code = (fn: () => unknown): string => {
    try {
      fn()
    } catch (e) {
      if (!(e instanceof CausewayError)) throw e
      return e.code
    }
    return 'accepted'
  }

  it("refuses msgpackr's Error extension naming constructor (was a TypeError), in values and stored values", () => {
    const b = hex('d4650092ab636f6e7374727563746f72a16d')
    expect(code(() => decodeValue(b))).toBe('INVALID_FRAME')
    expect(code(() => decodeStored(b))).toBe('INVALID_FRAME')
  })
  it('decodeEntry refuses an op value that is not an encoded Value (was accepted)', () => {
    const b = hex('9701a3612f300101a1619192a3622f30019193a16bc412d4650092ab636f6e7374727563746f72a16d90')
    expect(code(() => decodeEntry(b, 1000))).toBe('INVALID_FRAME')
    // and any value bytes that are not exactly one Value
    const mk = (value: Uint8Array) => encodeEntry({ stream: 'a/0', seq: 1, time: 1, site: 'a', deps: [], ops: [{ key: 'k', value, supersedes: [] }] })
    expect(code(() => decodeEntry(mk(Uint8Array.of(0xc1)), 1000))).toBe('INVALID_FRAME')
    expect(code(() => decodeEntry(mk(Uint8Array.of(0xc0, 0xc0)), 1000))).toBe('INVALID_FRAME')
    expect(code(() => decodeEntry(mk(encodeValue({ ok: 1 }, 100)), 1000))).toBe('accepted')
  })
  it('refuses every msgpackr extension outside the Value model', () => {
    const stock = new Packr({ structuredClone: true, moreTypes: true, useRecords: true })
    const xs: unknown[] = [new Set([1]), new Map([[1, 2]]), 2n ** 70n, new Error('x'), /re/g, new Float64Array(2), new Int8Array(1), undefined, { a: { b: 1 } }]
    for (const x of xs) {
      const b = stock.pack(x)
      expect([code(() => decodeValue(b)), code(() => decodeStored(b))]).toEqual(['INVALID_FRAME', 'INVALID_FRAME'])
    }
    // every ext type but the timestamp (-1), in all ext sizes
    for (let t = 0; t < 255; t++) for (const head of [[0xd4, t, 0], [0xd6, t, 0, 0, 0, 0], [0xc7, 0, t]]) expect(code(() => decodeValue(Uint8Array.from(head)))).toBe('INVALID_FRAME')
  })
  it('checks depth while decoding: deep arrays and maps are INVALID_FRAME, not a stack overflow', () => {
    const arrays = new Uint8Array(10_356).fill(0x91)
    arrays[10_355] = 0xc0
    const maps = Uint8Array.from(Buffer.from('81a161'.repeat(8296) + 'c0', 'hex'))
    const frameDeep = Uint8Array.from([0x92, 0x02, ...new Uint8Array(100_000).fill(0x91), 0xc0])
    // Refused by the depth check itself: no stack overflow underneath (wrapped or not).
    const byCheck = (fn: () => unknown) => {
      try {
        fn()
        expect.unreachable()
      } catch (e) {
        expect(e).toBeInstanceOf(CausewayError)
        expect((e as CausewayError).code).toBe('INVALID_FRAME')
        expect((e as Error).cause).toBeUndefined()
      }
    }
    for (const b of [arrays, maps]) {
      byCheck(() => decodeValue(b))
      byCheck(() => decodeStored(b))
      byCheck(() => decodeEntry(b, 1 << 20))
    }
    byCheck(() => decodeFrame(frameDeep))
  })
  it('the depth limit is the one encodeValue applies: what encodes, decodes', () => {
    const nest = (n: number): unknown => (n === 0 ? 1 : [nest(n - 1)])
    for (const n of [64, 65]) expect(decodeValue(encodeValue(nest(n), 1000))).toEqual(nest(n))
    expect(code(() => encodeValue(nest(66), 1000))).toBe('INVALID_VALUE')
    expect(code(() => decodeValue(encode(nest(66))))).toBe('INVALID_FRAME')
  })
  it('rejects trailing bytes without building an error message from the decoded tree', () => {
    const entry = encodeEntry({ stream: 'a/0', seq: 1, time: 1, site: 'a', deps: [], ops: [{ key: 'k', value: encodeValue(new Uint8Array(1 << 20), 2 << 20), supersedes: [] }] })
    const frame = encodeFrame({ t: 'writes', e: [entry] })
    const withTrailing = new Uint8Array(frame.length + 1)
    withTrailing.set(frame)
    const stringify = vi.spyOn(JSON, 'stringify')
    try {
      expect(code(() => decodeFrame(withTrailing))).toBe('INVALID_FRAME')
      expect(code(() => decodeValue(Uint8Array.of(0x01, 0x00)))).toBe('INVALID_FRAME')
      expect(code(() => decodeEntry(Uint8Array.from([...entry, 0]), 2 << 20))).toBe('INVALID_FRAME')
      expect(stringify).not.toHaveBeenCalled()
    } finally {
      stringify.mockRestore()
    }
    expect(decodeFrame(frame).t).toBe('writes')
  })
  it('rejects an empty or non-array frame by a check, not by catching a decoder exception', () => {
    for (const b of [new Uint8Array(0), Uint8Array.of(0x90), Uint8Array.of(0xc0), Uint8Array.of(0x92)]) {
      try {
        decodeFrame(b)
        expect.unreachable()
      } catch (e) {
        expect((e as CausewayError).code).toBe('INVALID_FRAME')
        expect((e as Error).cause).toBeUndefined()
      }
    }
    for (const fn of [decodeValue, decodeStored]) {
      try {
        fn(new Uint8Array(0))
        expect.unreachable()
      } catch (e) {
        expect((e as CausewayError).code).toBe('INVALID_FRAME')
        expect((e as Error).cause).toBeUndefined()
      }
    }
  })
  it('refuses lengths beyond the bytes left before allocating', () => {
    for (const h of ['dd7fffffff', 'dfffffffff', 'c6ffffffff', 'dbffffffff', 'c9ffffffffff', 'cb0000']) expect(code(() => decodeValue(hex(h)))).toBe('INVALID_FRAME')
  })
  it('refuses NaN, Infinity, invalid UTF-8, non-string map keys and duplicate keys in values', () => {
    for (const h of ['cb7ff8000000000000', 'cb7ff0000000000000', 'ca7fc00000', 'a2eda080', 'a1ff', '8101c0', '82a161c0a161c0', 'd6ff', 'c1']) expect(code(() => decodeValue(hex(h)))).toBe('INVALID_FRAME')
  })
  it('decodes Dates exactly as msgpackr encodes them (32, 64 and 96-bit timestamps)', () => {
    for (const t of [0, 86_400_000, 1_700_000_000_123, -1, -123_456_789, 8.64e15, -8.64e15]) expect((decodeValue(encodeValue(new Date(t), 100)) as Date).getTime()).toBe(t)
  })
})

describe('values are stored exactly (issue 8.3)', () => {
  it('keeps a __proto__ key as an own data property, without touching any prototype', () => {
    const v = JSON.parse('{"__proto__":{"x":1},"a":{"__proto__":[1,2]},"__proto_":3}') as Record<string, unknown>
    const back = decodeValue(encodeValue(v, 1000)) as Record<string, unknown>
    expect(Object.keys(back)).toEqual(['__proto__', 'a', '__proto_'])
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual({ x: 1 })
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.getPrototypeOf(back.a)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(back.a, '__proto__')?.value).toEqual([1, 2])
    expect(JSON.stringify(back)).toBe(JSON.stringify(v))
    expect(({} as Record<string, unknown>).x).toBeUndefined()
    expect(JSON.stringify(decodeStored(encodeValue(v, 1000)))).toBe(JSON.stringify(v))
  })
  it('refuses strings with lone surrogates (they would come back as U+FFFD)', () => {
    for (const v of ['\ud800', { k: 'a\udc00' }, { ['\ud800']: 1 }, ['x'.repeat(100) + '\ud83d']]) {
      try {
        encodeValue(v, 1000)
        expect.unreachable()
      } catch (e) {
        expect((e as CausewayError).code).toBe('INVALID_VALUE')
      }
    }
    expect(decodeValue(encodeValue('\ud83d\ude00', 100))).toBe('\ud83d\ude00')
  })
})

describe('the reader decodes strings as WHATWG UTF-8 does', () => {
  const fatal = new TextDecoder('utf-8', { fatal: true })
  const asStr8 = (b: Uint8Array) => Uint8Array.from([0xd9, b.length, ...b])
  it('accepts exactly the valid UTF-8 and yields the same string (short and long strings)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 65, maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s)))), (b) => {
        let want: string | undefined
        try {
          want = fatal.decode(b)
        } catch {
          want = undefined
        }
        let got: unknown
        try {
          got = decodeValue(asStr8(b))
        } catch (e) {
          expect((e as CausewayError).code).toBe('INVALID_FRAME')
          got = undefined
        }
        expect(got).toBe(want)
        // stored values read leniently: never a throw, and the same string when valid
        const lenient = decodeStored(asStr8(b))
        if (want !== undefined) expect(lenient).toBe(want)
      }),
      { numRuns: 1500 },
    )
  })
  it('round-trips any well-formed string, as a value and as a map key', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        expect(decodeValue(encodeValue(s, 1 << 16))).toBe(s)
        expect(Object.keys(decodeValue(encodeValue({ [s]: 1 }, 1 << 16)) as object)).toEqual([s])
      }),
      { numRuns: 500 },
    )
  })
})
