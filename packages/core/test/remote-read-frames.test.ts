import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { encode } from '../src/codec.js'
import { decodeFrame, encodeFrame, type Frame } from '../src/protocol.js'

describe('remote read frames (10, 11)', () => {
  it('round-trip', () => {
    const req: Frame = { t: 'read', id: 7, keys: ['eu/a', 'eu/b'], deps: [['a/0', 3]], waitMs: 2000 }
    expect(decodeFrame(encodeFrame(req))).toEqual(req)
    const res: Frame = { t: 'read-res', id: 7, status: 0, states: [['eu/a', [[10, 'a', 'a/0', 3, new Uint8Array([0xa1, 0x78])]]], ['eu/b', []]] }
    expect(decodeFrame(encodeFrame(res))).toEqual(res)
    expect(decodeFrame(encodeFrame({ t: 'read-res', id: 1, status: 1, states: [] }))).toEqual({ t: 'read-res', id: 1, status: 1, states: [] })
  })

  it('malformed requests and answers are INVALID_FRAME', () => {
    const bad: unknown[] = [
      [10, 1, [], [], 10],
      [10, 1, ['k'], [], -1],
      [10, 1, ['k'], [], 10_000_000],
      [10, 1, ['k'], [['a/0', 0]], 10],
      [10, -1, ['k'], [], 10],
      [10, 1, [''], [], 10],
      [10, 1, Array.from({ length: 1025 }, (_, i) => `k${i}`), [], 10],
      [11, 1, 3, []],
      [11, 1, 1, [['k', []]]],
      [11, 1, 0, [['k', [[1, 'b', 'a/0', 1, null]]]]], // sibling's stream is not its site's
      [11, 1, 0, [['k', [[1, 'a', 'a/0', 0, null]]]]],
      [11, 1, 0, [['k', [[1, 'a', 'a/0', 1, 'not bytes']]]]],
    ]
    for (const x of bad) expect(() => decodeFrame(encode(x))).toThrow(expect.objectContaining({ code: 'INVALID_FRAME' }))
  })

  it('random frames of types 10 and 11 decode to validated frames or INVALID_FRAME, nothing else', () => {
    fc.assert(
      fc.property(fc.constantFrom(10, 11), fc.array(fc.anything(), { maxLength: 6 }), (t, rest) => {
        try {
          const f = decodeFrame(encode([t, ...rest]))
          expect(['read', 'read-res']).toContain(f.t)
        } catch (e) {
          expect((e as { code?: string }).code).toBe('INVALID_FRAME')
        }
      }),
      { numRuns: 2000 },
    )
  })
})
