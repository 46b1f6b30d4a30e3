import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { makeTargets, mutate, prototypeSnapshot, rng, runTarget, TARGET_NAMES } from './targets.mjs'
import { encodeEntry, encodeFrame, encodeValue, lengthPrefixed, m } from './modules.js'

// Hostile input for every decoder, as `npm test` runs it (bounded: a few seconds in all). The long
// run is `npm run fuzz`. Only CausewayError with the decoder's code may escape; no built-in
// prototype may change; whatever decodeValue accepts must round-trip.
const targets = makeTargets(m)
const before = prototypeSnapshot()

const value = { s: 'é€😀', n: [1, -1, 1.5, 2 ** 40, null, true], d: new Date(1_700_000_000_123), b: new Uint8Array([1, 2, 3]), o: JSON.parse('{"__proto__":{"x":1}}') }
const valueBytes = encodeValue(value, 1 << 20)
const entry = encodeEntry({ stream: 'a/0', seq: 3, time: 9, site: 'a', deps: [['b/1', 2]], ops: [{ key: 'k', value: valueBytes, supersedes: [{ time: 4, site: 'b' }] }, { key: 'gone', value: undefined, supersedes: [] }] })
const frames = [
  encodeFrame({ t: 'hello', v: 1, site: 'a', accepts: true, sends: true, rv: [['a/0', 3], ['b/1', 2]], ups: ['b'] }),
  encodeFrame({ t: 'writes', e: [entry, entry] }),
  encodeFrame({ t: 'ack', rv: [['a/0', 3]] }),
  encodeFrame({ t: 'nack', stream: 'a/0', have: 2 }),
  encodeFrame({ t: 'beat', session: 7, defs: [0, 'a/0', 1, 'b'], rv: [0, 3], ups: [1, 1], prune: [1, 1], tree: [1, 1, 1, [[0, 2], [0, 3], [1, 1]], [1, 4, [0, 2], [0, 3]]] }),
  encodeFrame({ t: 'pull', stream: 'a/0', have: 2 }),
]
const ctx = new m.CausalContext()
ctx.observe('k', [{ time: 5, site: 'a' }], [['a/0', 3]])
const tokenBody = new Uint8Array(Buffer.from(ctx.encode().slice(4), 'base64url').subarray(4))
const seeds = [valueBytes, entry, tokenBody, ...frames, lengthPrefixed(frames[1]!)]

const check = (bytes: Uint8Array, byCheck = false) => {
  for (const name of TARGET_NAMES) {
    const out = runTarget(m, targets, name, bytes)
    if (out !== 'ok' && out !== 'rejected') throw out
    if (byCheck && out === 'rejected' && name !== 'framer') {
      // refused by the decoder's own check, not by a wrapped exception from below (stack overflow)
      try {
        runTarget(m, targets, name, bytes, { rethrow: true })
      } catch (e) {
        expect((e as Error).cause).toBeUndefined()
      }
    }
    if (out === 'ok' && name === 'decodeValue') {
      const v = m.decodeValue(bytes)
      expect(m.decodeValue(encodeValue(v, 1 << 22))).toEqual(v)
    }
  }
  expect(prototypeSnapshot()).toBe(before)
}

describe('every decoder under hostile input', () => {
  it('the seeds are valid encodings (so mutations start from real input)', () => {
    expect(runTarget(m, targets, 'decodeValue', valueBytes)).toBe('ok')
    expect(runTarget(m, targets, 'decodeEntry', entry)).toBe('ok')
    expect(runTarget(m, targets, 'contextToken', tokenBody)).toBe('ok')
    for (const f of frames) expect(runTarget(m, targets, 'decodeFrame', f)).toBe('ok')
    expect(runTarget(m, targets, 'framer', lengthPrefixed(frames[1]!))).toBe('ok')
  })
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 400 })
  })
  it('mutations of valid encodings (bit flips, inserts, deletes, splices, length edits, nesting, extensions)', () => {
    fc.assert(
      fc.property(fc.nat({ max: seeds.length - 1 }), fc.nat({ max: seeds.length - 1 }), fc.integer(), (i, j, seed) => check(mutate(rng(seed), seeds[i]!, seeds[j]!))),
      { numRuns: 800 },
    )
  })
  it('deep nesting at and around the limits, anywhere in a valid encoding', () => {
    fc.assert(
      fc.property(fc.nat({ max: seeds.length - 1 }), fc.integer({ min: 0, max: 20_000 }), fc.boolean(), fc.nat(), (i, depth, maps, at) => {
        const s = seeds[i]!
        const cut = at % (s.length + 1)
        const unit = maps ? [0x81, 0xa1, 0x61] : [0x91]
        const deep = new Uint8Array(depth * unit.length)
        for (let k = 0; k < depth; k++) deep.set(unit, k * unit.length)
        const b = new Uint8Array(s.length + deep.length + 1)
        b.set(s.subarray(0, cut))
        b.set(deep, cut)
        b[cut + deep.length] = 0xc0
        b.set(s.subarray(cut), cut + deep.length + 1)
        check(b, true)
      }),
      { numRuns: 150 },
    )
  })
  it('extensions of every type, in every ext size and msgpackr style (type byte, one ignored byte, next item)', () => {
    const items = [Uint8Array.from(Buffer.from('92ab636f6e7374727563746f72a16d', 'hex')), Uint8Array.of(0x92, 0xa1, 0x61, 0xa1, 0x62), Uint8Array.of(0x91, 0x01), Uint8Array.of(0xa1, 0x67), Uint8Array.of(0xc0)]
    // Exhaustive on their own (256 types x 4 forms x 5 items), then embedded at random places.
    for (let t = 0; t < 256; t++)
      for (const item of items) {
        check(Uint8Array.from([0xd4, t, 0, ...item]))
        check(Uint8Array.from([0xc7, item.length, t, ...item]))
        check(Uint8Array.from([0x91, 0xd4, t, 0, ...item]))
        check(Uint8Array.from([0x81, 0xa1, 0x76, 0xd4, t, 0, ...item]))
      }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.nat({ max: items.length - 1 }), fc.nat({ max: 3 }), fc.nat({ max: seeds.length - 1 }), fc.nat(), (t, i, form, si, at) => {
        const item = items[i]!
        const ext = form === 0 ? Uint8Array.from([0xd4, t, 0, ...item]) : form === 1 ? Uint8Array.from([0xc7, item.length, t, ...item]) : form === 2 ? Uint8Array.from([0xd6, t, 0, 0, 0, 0]) : Uint8Array.from([0xd4, t, 0])
        check(ext)
        const s = seeds[si]!
        const cut = at % (s.length + 1)
        check(Uint8Array.from([...s.subarray(0, cut), ...ext, ...s.subarray(cut)]))
      }),
      { numRuns: 600 },
    )
  })
  it('huge claimed lengths (arrays, maps, str, bin, ext) are refused without allocating them', () => {
    const heads = [0xdc, 0xdd, 0xde, 0xdf, 0xda, 0xdb, 0xc5, 0xc6, 0xc8, 0xc9]
    fc.assert(
      fc.property(fc.constantFrom(...heads), fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 16 }), (h, n, tail) => {
        const wide = h === 0xdd || h === 0xdf || h === 0xdb || h === 0xc6 || h === 0xc9
        const len = wide ? [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255] : [(n >>> 8) & 255, n & 255]
        check(Uint8Array.from([h, ...len, ...tail]))
        check(Uint8Array.from([0x92, 0x01, 0x91, h, ...len, ...tail]))
      }),
      { numRuns: 300 },
    )
  })
})
