import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { LinkDecoder, LinkEncoder, MAX_LINK_NAMES, type Defs } from '../src/link-codec.js'
import { isCausewayError } from '../src/errors.js'

const validName = (s: string) => /^[a-z0-9][a-z0-9_-]{0,62}(\/\d{1,2})?$/.test(s)
const name = fc.stringMatching(/^[a-z][a-z0-9]{0,5}\/\d$/)
const vec = fc.dictionary(name, fc.integer({ min: 1, max: 1e9 }), { maxKeys: 12 }).map((o) => new Map(Object.entries(o)))
const set = fc.uniqueArray(name, { maxLength: 8 }).map((a) => new Set(a))

describe('LinkEncoder / LinkDecoder', () => {
  it('round-trips any sequence of vectors and sets as deltas; an unchanged vector costs nothing', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(vec, set), { minLength: 1, maxLength: 10 }), (frames) => {
        const enc = new LinkEncoder(1)
        const dec = new LinkDecoder(validName)
        for (const [v, s] of frames) {
          const defs: Defs = []
          const dv = enc.vector('rv', v, defs)
          const ds = enc.set('cover', s, defs)
          dec.define(structuredClone(defs))
          expect(new Map(dec.vector('rv', dv, (q) => Number.isSafeInteger(q) && q > 0))).toEqual(v)
          expect(new Set(dec.set('cover', ds))).toEqual(s)
          const again: Defs = []
          expect(enc.vector('rv', v, again)).toEqual([])
          expect(enc.set('cover', s, again)).toEqual([])
          expect(again).toEqual([])
        }
      }),
    )
  })

  it('names cross once per connection', () => {
    const enc = new LinkEncoder(1)
    const d1: Defs = []
    enc.vector('rv', new Map([['paris/0', 5], ['lyon/1', 7]]), d1)
    const d2: Defs = []
    enc.vector('rv', new Map([['paris/0', 6], ['lyon/1', 8]]), d2)
    expect(d1).toEqual([0, 'paris/0', 1, 'lyon/1'])
    expect(d2).toEqual([])
  })

  it('hostile input only ever raises INVALID_FRAME and changes nothing', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (defs, v, s) => {
        const dec = new LinkDecoder(validName)
        dec.define([0, 'a/0'])
        const before = new Map(dec.vector('rv', [0, 3], () => true))
        for (const f of [() => dec.define(defs), () => dec.vector('rv', v, (q) => Number.isSafeInteger(q) && q > 0), () => dec.set('c', s)]) {
          try {
            f()
          } catch (e) {
            expect(isCausewayError(e, 'INVALID_FRAME')).toBe(true)
          }
        }
        if (!Array.isArray(v)) expect(new Map(dec.vector('rv', [], () => true))).toEqual(before)
      }),
      { numRuns: 300 },
    )
  })

  it('bounds the names one connection can define', () => {
    const dec = new LinkDecoder(() => true)
    const defs: Defs = []
    for (let i = 0; i <= MAX_LINK_NAMES; i++) defs.push(i, `s${i}`)
    expect(() => dec.define(defs)).toThrow(expect.objectContaining({ code: 'INVALID_FRAME' }))
    expect(() => dec.name(0)).toThrow(expect.objectContaining({ code: 'INVALID_FRAME' }))
  })
})

describe('decodeBeat', () => {
  it('round-trips beats through one connection and refuses hostile ones with INVALID_FRAME only', async () => {
    const { encodeBeat, decodeBeat } = await import('../src/beat.js')
    const enc = new LinkEncoder(9)
    const dec = new LinkDecoder(validName)
    const tree = { root: 'a', dist: 1, parent: true, up: { min: new Map([['a/0', 2]]), heads: new Map([['b/0', 5]]), cover: new Set(['b', 'c']) }, pub: { root: 'a', epoch: 3, min: new Map([['a/0', 1]]), heads: new Map([['a/0', 4]]) } }
    const b = decodeBeat(dec, structuredClone(encodeBeat(enc, { rv: new Map([['a/0', 7]]), ups: new Set(['a']), prune: new Set(['c']), tree })))
    expect(b.rv).toEqual(new Map([['a/0', 7]]))
    expect(b.prune).toEqual(new Set(['c']))
    expect(b.tree.up?.cover).toEqual(new Set(['b', 'c']))
    expect(b.tree.pub?.heads).toEqual(new Map([['a/0', 4]]))
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), fc.anything(), fc.anything(), (session, defs, rv, ups, t) => {
        try {
          decodeBeat(new LinkDecoder(validName), { session, defs, rv, ups, prune: ups, tree: t } as never)
        } catch (e) {
          expect(isCausewayError(e, 'INVALID_FRAME')).toBe(true)
        }
      }),
      { numRuns: 500 },
    )
  })
})
