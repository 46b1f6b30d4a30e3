import { hash32 } from './codec.js'

/**
 * A bounded-degree overlay without hand-written peer lists. Members sit on a ring ordered by a
 * hash of their ids; every site links to its nearest live neighbours on the ring (which keeps the
 * graph connected) and to `(degree - 2) / 2` chords at hashed positions (which keep its diameter
 * near log N, as in a random regular graph). Links are symmetric: a site also links to every site
 * that chose it, so the degree is about `degree`, never less than the ring's 2.
 *
 * Every site computes the same graph from the same members and the same set of dead sites, so no
 * coordination is needed; when a neighbour dies the next live site on the ring or after the chord's
 * position takes its place. Deterministic: no randomness, no clock. O(members × degree).
 */
export function overlayGraph(members: Iterable<string>, degree: number, dead: ReadonlySet<string> = new Set()): Map<string, Set<string>> {
  const ring = [...new Set(members)]
    .filter((m) => !dead.has(m))
    .map((m) => [hash32(m), m] as const)
    .sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([, m]) => m)
  const n = ring.length
  const g = new Map<string, Set<string>>(ring.map((m) => [m, new Set<string>()]))
  const link = (a: string, b: string) => {
    if (a === b) return
    g.get(a)!.add(b)
    g.get(b)!.add(a)
  }
  if (n <= 1) return g
  if (degree >= n - 1) {
    for (const a of ring) for (const b of ring) link(a, b)
    return g
  }
  const chords = Math.max(0, Math.floor((degree - 2) / 2))
  for (let i = 0; i < n; i++) {
    const id = ring[i]!
    link(id, ring[(i + 1) % n]!)
    const picked = new Set([ring[(i + 1) % n]!, ring[(i + n - 1) % n]!])
    for (let j = 0; j < chords; j++) {
      // A chord to a hashed position; skip onwards past sites already picked.
      let k = (i + 2 + (hash32(`${id}#${j}`) % Math.max(1, n - 3))) % n
      for (let guard = 0; guard < n && (k === i || picked.has(ring[k]!)); guard++) k = (k + 1) % n
      if (k === i) continue
      picked.add(ring[k]!)
      link(id, ring[k]!)
    }
  }
  return g
}

/** The sites `self` links to directly (see overlayGraph). */
export function overlayNeighbours(self: string, members: Iterable<string>, degree: number, dead: ReadonlySet<string> = new Set()): Set<string> {
  const d = new Set(dead)
  d.delete(self)
  const all = [...members]
  if (!all.includes(self)) all.push(self)
  return overlayGraph(all, degree, d).get(self) ?? new Set()
}
