import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { FrameDecoder, encodeFrame, varintLength } from '../src/index.js'

function decodeAll(max: number, chunks: Uint8Array[]): { frames: Uint8Array[]; error: string | undefined } {
  const d = new FrameDecoder(max)
  const frames: Uint8Array[] = []
  let error: string | undefined
  for (const c of chunks) {
    const err = d.push(c, (f) => frames.push(f))
    if (err !== undefined) { error = err.code; break }
  }
  return { frames, error }
}

/** Split `bytes` at the given (sorted, deduped) cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) { out.push(bytes.subarray(prev, p)); prev = p }
  out.push(bytes.subarray(prev))
  return out
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.byteLength }
  return out
}

describe('frame codec', () => {
  it('encodes lengths as canonical varints', () => {
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0])
    expect([...encodeFrame(new Uint8Array(300)).subarray(0, 2)]).toEqual([0xac, 0x02])
    expect(varintLength(127)).toBe(1)
    expect(varintLength(128)).toBe(2)
    expect(varintLength(4 * 1024 * 1024)).toBe(4)
  })

  it('round-trips any frames split at any points', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (frames, cuts) => {
        const wire = concat(frames.map(encodeFrame))
        const got = decodeAll(1024, split(wire, cuts))
        expect(got.error).toBeUndefined()
        expect(got.frames.map((f) => [...f])).toEqual(frames.map((f) => [...f]))
      },
    ), { numRuns: 300 })
  })

  it('accepts Uint8ArrayList-like iterables of chunks', () => {
    const d = new FrameDecoder(100)
    const frames: Uint8Array[] = []
    const wire = encodeFrame(new Uint8Array([1, 2, 3]))
    expect(d.push([wire.subarray(0, 2), wire.subarray(2)], (f) => frames.push(f))).toBeUndefined()
    expect(frames.map((f) => [...f])).toEqual([[1, 2, 3]])
    expect(d.push([new Uint8Array([1]), 'nope' as unknown as Uint8Array], () => {})?.code).toBe('INVALID_FRAME')
  })

  it('rejects oversize, overlong and too-long prefixes without allocating the claimed size', () => {
    expect(decodeAll(1000, [encodeFrame(new Uint8Array(1001))]).error).toBe('INVALID_FRAME')
    expect(decodeAll(1000, [new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])]).error).toBe('INVALID_FRAME') // 4 GiB claim
    expect(decodeAll(2 ** 40, [new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])]).error).toBe('INVALID_FRAME')
    expect(decodeAll(1000, [new Uint8Array([0x81, 0x00])]).error).toBe('INVALID_FRAME') // 1 encoded in 2 bytes
    expect(decodeAll(1000, [new Uint8Array([0x80]), new Uint8Array([0x00])]).error).toBe('INVALID_FRAME')
    // The check fires on the byte that crosses the limit, not after the whole prefix.
    const d = new FrameDecoder(200)
    expect(d.push(new Uint8Array([0xff]), () => {})).toBeUndefined() // 127 so far
    expect(d.push(new Uint8Array([0x01]), () => {})?.code).toBe('INVALID_FRAME') // 255 > 200
    expect(d.bufferedBytes).toBe(0)
    // Poisoned: further input is refused, no frame is emitted.
    let emitted = 0
    expect(d.push(encodeFrame(new Uint8Array(1)), () => emitted++)?.code).toBe('INVALID_FRAME')
    expect(emitted).toBe(0)
  })

  it('a throwing consumer poisons the decoder instead of throwing out of push()', () => {
    const d = new FrameDecoder(100)
    const err = d.push(encodeFrame(new Uint8Array([1])), () => { throw new Error('boom') })
    expect(err?.code).toBe('INVALID_FRAME')
  })

  it('fuzz: random and mutated chunks never throw, hang or pollute prototypes', () => {
    const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort()
    const valid = fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }).map((fs) => concat(fs.map(encodeFrame)))
    const mutated = fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 })).map(([bytes, muts]) => {
      const b = new Uint8Array(bytes)
      for (const [at, v] of muts) if (b.byteLength > 0) b[at % b.byteLength] = v
      return b
    })
    const input = fc.oneof(fc.uint8Array({ maxLength: 512 }), valid, mutated)
    fc.assert(fc.property(input, fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 1, max: 4096 }), (bytes, cuts, max) => {
      const d = new FrameDecoder(max)
      let total = 0
      let result: unknown
      expect(() => {
        for (const c of split(bytes, cuts)) {
          result = d.push(c, (f) => {
            expect(f.byteLength).toBeLessThanOrEqual(max)
            total += f.byteLength
          })
          if (result !== undefined) break
        }
      }).not.toThrow()
      // Never emits more payload than it was given, and holds at most one partial frame.
      expect(total).toBeLessThanOrEqual(bytes.byteLength)
      expect(d.bufferedBytes).toBeLessThanOrEqual(max)
      if (result !== undefined) expect((result as { code: string }).code).toBe('INVALID_FRAME')
    }), { numRuns: 2000 })
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoKeys)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })

  it('fuzz: a valid stream with an oversize frame spliced in is always reported', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 5 }),
      fc.integer({ min: 101, max: 2 ** 31 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      (before, claimed, cuts) => {
        const prefix = encodeFrame(new Uint8Array(0)).subarray(0, 0)
        const lenBytes: number[] = []
        let v = claimed
        while (v >= 0x80) { lenBytes.push((v % 0x80) | 0x80); v = Math.floor(v / 0x80) }
        lenBytes.push(v)
        const wire = concat([...before.map(encodeFrame), prefix, new Uint8Array(lenBytes)])
        const got = decodeAll(100, split(wire, cuts))
        expect(got.error).toBe('INVALID_FRAME')
        expect(got.frames.length).toBe(before.length)
      },
    ), { numRuns: 500 })
  })
})
