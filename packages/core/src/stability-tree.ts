/**
 * Causal stability without every site holding every other site's vector.
 *
 * The sites build a spanning tree over the overlay (distance-vector towards the smallest site id,
 * at most `maxHops` deep) and aggregate along it. Each site sends its parent, per stream, the
 * minimum applied seq over its subtree (`min`), the maximum of each origin's own head over its
 * subtree (`heads`), and the set of sites the subtree covers. When the root's subtree covers every
 * member, it publishes a numbered `(min, heads)` pair, which flows back down the tree.
 *
 * Why it is correct (docs/protocol.md, "Causal stability"): a site Z's `min` and `heads` are taken
 * in the same tick, so a publication P satisfies, for every member Z and some time t_Z,
 * P.min <= av_Z(t_Z) and P.heads >= heads_Z(t_Z). If P.min covers write d, every Z had applied d by
 * t_Z, so every write Z issued concurrently with d (before applying it) is within heads_Z(t_Z),
 * hence within P.heads. A site whose applied vector covers P.heads has therefore applied every
 * write concurrent with d: nothing concurrent with d can still arrive, and d's tombstone may go.
 * Because the tree has no cycles, a subtree's aggregate is recomputed from its members' current
 * values at every tick: there is no stale minimum fed back around a loop.
 *
 * This module knows nothing of the network: the engine feeds it neighbours' beats and sends what
 * `beatFor` returns; the link layer delta-encodes it.
 */

export type VectorMap = Map<string, number>

/** What a site tells one neighbour about the tree, each beat. */
export interface TreeInfo {
  root: string
  dist: number
  /** The receiver is the sender's parent. */
  parent: boolean
  /** The sender's subtree aggregate (sent to its parent only). */
  up?: { min: VectorMap; heads: VectorMap; cover: Set<string> }
  /** The newest publication the sender knows. */
  pub?: Publication
}

export interface Publication {
  root: string
  epoch: number
  min: VectorMap
  heads: VectorMap
}

interface Neighbour {
  root: string
  dist: number
  child: boolean
  up: { min: VectorMap; heads: VectorMap; cover: Set<string> } | undefined
}

/** Publications kept to decide stability (an older one may already be covered when a newer is not). */
const HISTORY = 8

export class StabilityTree {
  private readonly neighbours = new Map<string, Neighbour>()
  private root: string
  private dist = 0
  private parent: string | undefined
  private epoch = 0
  private latest: Publication | undefined
  private readonly history: Publication[] = []
  private lastAgg: { min: VectorMap; heads: VectorMap } | undefined

  constructor(
    private readonly self: string,
    private readonly maxHops = 32,
  ) {
    this.root = self
  }

  /** A neighbour's beat arrived. */
  onBeat(peer: string, info: TreeInfo): void {
    const n: Neighbour = { root: info.root, dist: info.dist, child: info.parent, up: info.parent ? info.up : undefined }
    const old = this.neighbours.get(peer)
    // A child that sends no new aggregate keeps its previous one (beats are deltas).
    if (n.child && !n.up && old?.child) n.up = old.up
    this.neighbours.set(peer, n)
    if (info.pub) this.offer(info.pub)
  }

  /** The neighbour is gone (connection down): it is no longer a parent, child or root candidate. */
  onDown(peer: string): void {
    this.neighbours.delete(peer)
  }

  /**
   * One tick (a heartbeat): choose root, distance and parent; aggregate the subtree; publish when
   * this site is the root and its subtree covers every member.
   */
  tick(av: VectorMap, heads: VectorMap, members: Iterable<string>): void {
    let root = this.self
    for (const n of this.neighbours.values()) if (n.dist + 1 <= this.maxHops && n.root < root) root = n.root
    let parent: string | undefined
    let dist = 0
    if (root !== this.self) {
      let best = Infinity
      for (const [id, n] of this.neighbours) {
        if (n.root !== root || n.dist + 1 > this.maxHops) continue
        if (n.dist < best || (n.dist === best && parent !== undefined && id < parent)) {
          best = n.dist
          parent = id
        }
      }
      dist = best + 1
    }
    if (root !== this.root) this.latest = undefined // another tree: its publications start over
    this.root = root
    this.dist = dist
    this.parent = parent
    const agg = this.aggregate(av, heads)
    this.lastAgg = { min: agg.min, heads: agg.heads }
    if (root !== this.self) return
    for (const m of members) if (!agg.cover.has(m)) return
    const prev = this.latest
    if (prev && prev.root === this.self && sameVector(prev.min, agg.min) && sameVector(prev.heads, agg.heads)) return
    this.offer({ root: this.self, epoch: Math.max(this.epoch, prev?.epoch ?? 0) + 1, min: agg.min, heads: agg.heads })
  }

  /** What to tell `peer` this beat. */
  beatFor(peer: string): TreeInfo {
    const info: TreeInfo = { root: this.root, dist: this.dist, parent: peer === this.parent }
    if (info.parent && this.lastAgg) info.up = { min: this.lastAgg.min, heads: this.lastAgg.heads, cover: this.cover() }
    if (this.latest) info.pub = this.latest
    return info
  }

  /**
   * Is write (stream, seq) causally stable here: applied at every member, and every write
   * concurrent with it applied at this site (`av` is this site's applied vector)?
   */
  stable(stream: string, seq: number, av: ReadonlyMap<string, number>): boolean {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const p = this.history[i]!
      if ((p.min.get(stream) ?? 0) < seq) continue
      if (covers(av, p.heads)) return true
    }
    return false
  }

  /** For status and tests. */
  view(): { root: string; dist: number; parent: string | undefined; epoch: number | undefined; neighbours: number } {
    return { root: this.root, dist: this.dist, parent: this.parent, epoch: this.latest?.epoch, neighbours: this.neighbours.size }
  }

  private cover(): Set<string> {
    const c = new Set<string>([this.self])
    for (const n of this.neighbours.values()) if (n.child && n.root === this.root && n.up) for (const s of n.up.cover) c.add(s)
    return c
  }

  private aggregate(av: VectorMap, heads: VectorMap): { min: VectorMap; heads: VectorMap; cover: Set<string> } {
    const min = new Map(av)
    const hd = new Map(heads)
    const cover = new Set<string>([this.self])
    for (const n of this.neighbours.values()) {
      if (!n.child || n.root !== this.root || !n.up) continue
      // A stream missing from a child's minimum is at 0 there: it leaves the minimum.
      for (const [s, q] of min) {
        const c = n.up.min.get(s)
        if (c === undefined) min.delete(s)
        else if (c < q) min.set(s, c)
      }
      for (const [s, q] of n.up.heads) if ((hd.get(s) ?? 0) < q) hd.set(s, q)
      for (const s of n.up.cover) cover.add(s)
    }
    return { min, heads: hd, cover }
  }

  private offer(p: Publication): void {
    if (p.root !== this.root) return
    if (this.latest && this.latest.root === p.root && this.latest.epoch >= p.epoch) return
    this.latest = p
    this.epoch = Math.max(this.epoch, p.epoch)
    this.history.push(p)
    if (this.history.length > HISTORY) this.history.shift()
  }
}

function sameVector(a: VectorMap, b: VectorMap): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}

function covers(av: ReadonlyMap<string, number>, target: VectorMap): boolean {
  for (const [s, q] of target) if ((av.get(s) ?? 0) < q) return false
  return true
}
