import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { overlayGraph, overlayNeighbours } from '../src/overlay.js'

function graph(ids: string[], degree: number, dead: Set<string> = new Set()) {
  const g = overlayGraph(ids, degree, dead)
  // What each site computes for itself is its row of the shared graph.
  for (const id of ids.slice(0, 20)) if (!dead.has(id)) expect(overlayNeighbours(id, ids, degree, dead)).toEqual(g.get(id))
  return g
}

function diameter(g: Map<string, Set<string>>): number {
  let max = 0
  for (const start of g.keys()) {
    const dist = new Map([[start, 0]])
    const q = [start]
    for (let h = 0; h < q.length; h++) {
      const x = q[h]!
      for (const y of g.get(x)!) if (!dist.has(y)) {
        dist.set(y, dist.get(x)! + 1)
        q.push(y)
      }
    }
    if (dist.size !== g.size) return Infinity
    for (const d of dist.values()) max = Math.max(max, d)
  }
  return max
}

describe('overlayNeighbours', () => {
  it('is symmetric, connected, bounded and every site computes the same graph', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/), { minLength: 2, maxLength: 60 }), fc.integer({ min: 2, max: 8 }), (ids, degree) => {
        const g = graph(ids, degree)
        for (const [a, ns] of g) {
          expect(ns.has(a)).toBe(false)
          for (const b of ns) expect(g.get(b)!.has(a)).toBe(true)
        }
        expect(diameter(g)).toBeLessThan(Infinity)
      }),
      { numRuns: 100 },
    )
  })

  it('keeps degree near the target and diameter near log N at 1,024 sites; re-chooses around dead sites', () => {
    const ids = Array.from({ length: 1024 }, (_, i) => `site-${i}`)
    const g = graph(ids, 4)
    const degrees = [...g.values()].map((s) => s.size)
    const mean = degrees.reduce((a, b) => a + b, 0) / degrees.length
    expect(mean).toBeGreaterThanOrEqual(3.5)
    expect(mean).toBeLessThanOrEqual(4.5)
    expect(Math.max(...degrees)).toBeLessThanOrEqual(12)
    expect(diameter(g)).toBeLessThanOrEqual(16)
    const dead = new Set(ids.filter((_, i) => i % 10 === 3))
    const g2 = graph(ids, 4, dead)
    for (const ns of g2.values()) for (const d of dead) expect(ns.has(d)).toBe(false)
    expect(diameter(g2)).toBeLessThan(Infinity)
  })
})
