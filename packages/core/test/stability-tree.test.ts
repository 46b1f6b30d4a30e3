import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { StabilityTree, type TreeInfo } from '../src/stability-tree.js'

/**
 * A model: each site has one stream (`<site>/0`); a step either writes (own head + 1, applied at
 * once) or applies the next entry of another site's stream. Beats are delivered with a delay of
 * one tick. The oracle records, for every write d and every site Z, Z's own head when Z applied d:
 * every write Z issued concurrently with d is at or below it.
 */
function model(n: number, edges: Array<[number, number]>, seed: number) {
  const ids = Array.from({ length: n }, (_, i) => `s${String(i).padStart(4, '0')}`)
  const trees = ids.map((id) => new StabilityTree(id))
  const av = ids.map(() => new Map<string, number>())
  const head = ids.map(() => 0)
  const headAtApply = new Map<string, number[]>() // `${stream}#${seq}` -> per site
  const adj = ids.map(() => new Set<number>())
  for (const [a, b] of edges) {
    if (a === b) continue
    adj[a]!.add(b)
    adj[b]!.add(a)
  }
  let rnd = seed >>> 0
  const rand = () => ((rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0) / 2 ** 32)
  const applyAt = (z: number, stream: string, seq: number) => {
    av[z]!.set(stream, seq)
    const k = `${stream}#${seq}`
    let arr = headAtApply.get(k)
    if (!arr) headAtApply.set(k, (arr = ids.map(() => -1)))
    arr[z] = head[z]!
  }
  let inflight: Array<{ to: number; from: string; info: TreeInfo }> = []
  const step = (writes: boolean) => {
    for (let z = 0; z < n; z++) {
      if (writes && rand() < 0.3) {
        head[z]!++
        applyAt(z, `${ids[z]}/0`, head[z]!)
      }
      // apply one pending entry of a random other stream
      const o = Math.floor(rand() * n)
      if (o !== z) {
        const s = `${ids[o]}/0`
        const cur = av[z]!.get(s) ?? 0
        if (cur < head[o]!) applyAt(z, s, cur + 1)
      }
    }
    for (const m of inflight) trees[m.to]!.onBeat(m.from, m.info)
    inflight = []
    for (let z = 0; z < n; z++) {
      trees[z]!.tick(av[z]!, new Map([[`${ids[z]}/0`, head[z]!]]), ids)
      for (const y of adj[z]!) inflight.push({ to: y, from: ids[z]!, info: trees[z]!.beatFor(ids[y]!) })
    }
  }
  /** The safety property of stable(): checked for every write at every site. */
  const checkSafety = () => {
    let stableSeen = 0
    for (let s = 0; s < n; s++) {
      for (let o = 0; o < n; o++) {
        const stream = `${ids[o]}/0`
        for (let q = 1; q <= head[o]!; q++) {
          if (!trees[s]!.stable(stream, q, av[s]!)) continue
          stableSeen++
          const hs = headAtApply.get(`${stream}#${q}`)!
          for (let z = 0; z < n; z++) {
            expect(av[z]!.get(stream) ?? 0, `site ${z} applied ${stream}#${q}`).toBeGreaterThanOrEqual(q)
            // every write z issued before applying d is applied at s
            expect(av[s]!.get(`${ids[z]}/0`) ?? 0, `site ${s} applied ${ids[z]}'s writes concurrent with ${stream}#${q}`).toBeGreaterThanOrEqual(hs[z]!)
          }
        }
      }
    }
    return stableSeen
  }
  const drain = () => {
    // apply everything everywhere (no new writes)
    for (let z = 0; z < n; z++) for (let o = 0; o < n; o++) for (let q = (av[z]!.get(`${ids[o]}/0`) ?? 0) + 1; q <= head[o]!; q++) applyAt(z, `${ids[o]}/0`, q)
  }
  return { ids, trees, step, checkSafety, drain, head, av }
}

function ringWithChords(n: number, chords: Array<[number, number]>): Array<[number, number]> {
  const e: Array<[number, number]> = []
  for (let i = 0; i < n; i++) e.push([i, (i + 1) % n])
  return [...e, ...chords.map(([a, b]) => [a % n, b % n] as [number, number])]
}

describe('StabilityTree', () => {
  it('is safe: a write is reported stable only when every site applied it and everything concurrent with it is applied here', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 9 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 6 }), fc.integer(), (n, chords, seed) => {
        const m = model(n, ringWithChords(n, chords), seed)
        for (let t = 0; t < 40; t++) {
          m.step(true)
          m.checkSafety()
        }
      }),
      { numRuns: 60 },
    )
  })

  it('is live: once writes stop and everything is applied, every write becomes stable at every site', () => {
    const n = 24
    const m = model(n, ringWithChords(n, [[0, 12], [3, 17], [5, 20], [8, 2]]), 7)
    for (let t = 0; t < 30; t++) m.step(true)
    m.drain()
    for (let t = 0; t < 40; t++) m.step(false)
    const total = m.head.reduce((a, b) => a + b, 0)
    expect(total).toBeGreaterThan(50)
    expect(m.checkSafety()).toBe(total * n)
    // one root, everybody agrees
    const roots = new Set(m.trees.map((t) => t.view().root))
    expect([...roots]).toEqual([m.ids[0]])
  })

  it('a missing member blocks stability (no publication covers it)', () => {
    const t = new StabilityTree('a')
    t.tick(new Map([['a/0', 3]]), new Map([['a/0', 3]]), ['a', 'b'])
    expect(t.stable('a/0', 1, new Map([['a/0', 3]]))).toBe(false)
    t.tick(new Map([['a/0', 3]]), new Map([['a/0', 3]]), ['a'])
    expect(t.stable('a/0', 1, new Map([['a/0', 3]]))).toBe(true)
  })

  it('survives the root going away: the others elect the next smallest id and go on publishing', () => {
    const n = 8
    const m = model(n, ringWithChords(n, [[0, 4]]), 3)
    for (let t = 0; t < 20; t++) m.step(true)
    // s0000 leaves: its neighbours drop it; members no longer include it
    const rest = m.trees.slice(1)
    for (const t of rest) t.onDown(m.ids[0]!)
    const ids = m.ids.slice(1)
    const inflight: Array<[number, string, TreeInfo]> = []
    const adj = (i: number) => [((i + 1) % n), ((i + n - 1) % n)].filter((j) => j !== 0)
    for (let round = 0; round < 80; round++) {
      for (const [to, from, info] of inflight.splice(0)) m.trees[to]!.onBeat(from, info)
      for (let z = 1; z < n; z++) {
        m.trees[z]!.tick(m.av[z]!, new Map([[`${m.ids[z]}/0`, m.head[z]!]]), ids)
        for (const y of adj(z)) inflight.push([y, m.ids[z]!, m.trees[z]!.beatFor(m.ids[y]!)])
      }
    }
    expect(new Set(rest.map((t) => t.view().root))).toEqual(new Set([m.ids[1]]))
    expect(rest.every((t) => t.view().epoch !== undefined)).toBe(true)
  })
})
