import type { LamportClock } from './clock.js'
import type { StreamId } from './context.js'
import { COLLECT_KEYS_PER_PASS, STABILITY_MAX_HOPS, TRIM_MIN_ENTRIES } from './limits.js'
import type { NetworkAdapter } from './network.js'
import type { PeerView } from './replication.js'
import type { Shard } from './shard.js'
import { StabilityTree, type TreeInfo } from './stability-tree.js'
import type { Streams } from './streams.js'

/** What stability needs from its site. */
export interface StabilityHost {
  readonly siteId: string
  readonly network: NetworkAdapter | undefined
  readonly clock: LamportClock
  /** What a peer is known to hold (replication). */
  peerView(site: string): PeerView | undefined
  /** Removed members (membership.ts) hold nothing back. */
  isRemoved?(site: string): boolean
  /** Peers silent past offlineHorizonMs no longer hold back trimming. */
  isExpired?(site: string): boolean
}

/**
 * Causal stability and its uses: tombstone collection (a tombstone goes once its write is stable)
 * and log trimming (entries every receiving peer holds). Stability is aggregated along a spanning
 * tree of the overlay (stability-tree.ts): a site keeps its neighbours' views, never a vector per
 * site of the deployment.
 */
export class Stability {
  private readonly tree: StabilityTree
  /** Every site this one has heard of (origins, peers, tree covers): stability waits for all of them. */
  private readonly members = new Set<string>()

  constructor(
    private readonly host: StabilityHost,
    private readonly streams: Streams,
    private readonly shards: readonly Shard[],
  ) {
    this.tree = new StabilityTree(host.siteId, STABILITY_MAX_HOPS)
    this.members.add(host.siteId)
  }

  /** A neighbour's beat: its view of the tree. */
  onBeat(peer: string, info: TreeInfo): void {
    this.members.add(peer)
    if (info.up) for (const s of info.up.cover) this.members.add(s)
    this.tree.onBeat(peer, info)
  }

  onDown(peer: string): void {
    this.tree.onDown(peer)
  }

  /** What to tell `peer` in this beat. */
  beatFor(peer: string): TreeInfo {
    return this.tree.beatFor(peer)
  }

  /** A heartbeat: recompute the tree and this subtree's aggregate. */
  tick(): void {
    for (const c of this.host.network?.peers() ?? []) this.members.add(c.site)
    const av = new Map<StreamId, number>()
    const heads = new Map<StreamId, number>()
    for (const s of this.streams.values()) {
      this.members.add(s.origin)
      if (s.av > 0) av.set(s.id, s.av)
      // A removed site's heads are what live sites applied of it: its writes that can still arrive.
      if ((s.origin === this.host.siteId || this.host.isRemoved?.(s.origin)) && s.av > 0) heads.set(s.id, s.av)
    }
    // Removed sites report no more: stability no longer waits for them.
    const live = [...this.members].filter((m) => !this.host.isRemoved?.(m))
    this.tree.tick(av, heads, live)
  }

  /** For status and tests. */
  view(): ReturnType<StabilityTree['view']> & { members: number } {
    return { ...this.tree.view(), members: this.members.size }
  }

  /**
   * Causal stability of a write (stream, seq): every member has applied it, and this site has
   * applied every write concurrent with it, so nothing concurrent can still arrive here. Only then
   * may its tombstone be reclaimed.
   */
  stable(stream: StreamId, seq: number, av: ReadonlyMap<StreamId, number>): boolean {
    if ((av.get(stream) ?? 0) < seq) return false
    return this.tree.stable(stream, seq, av)
  }

  /** Reclaim causally stable tombstones (keys the shards marked when a tombstone was written). */
  async collectTombstones(): Promise<void> {
    const av = new Map<StreamId, number>()
    for (const s of this.streams.values()) if (s.av > 0) av.set(s.id, s.av)
    for (const sh of this.shards) {
      const keys = await sh.tombstoneKeys(COLLECT_KEYS_PER_PASS)
      if (keys.length === 0) continue
      await new Promise<void>((resolve, reject) => sh.enqueue({ kind: 'gc', keys, stable: (s, q) => this.stable(s, q, av), resolve, reject }))
    }
  }

  /** Drop log entries every configured receiving peer holds (and that are applied here). */
  async trimLogs(): Promise<void> {
    const cfgs = this.host.network?.peers() ?? []
    for (const s of this.streams.values()) {
      let floor = s.av
      for (const c of cfgs) {
        if (!c.send || c.site === s.origin || this.host.isRemoved?.(c.site)) continue
        const p = this.host.peerView(c.site)
        if (p?.neverAccepts || this.host.isExpired?.(c.site)) continue
        floor = Math.min(floor, p?.known.get(s.id) ?? 0)
      }
      if (floor - s.gc < TRIM_MIN_ENTRIES) continue
      await this.streams.trim(s, floor, this.host.clock.current)
    }
  }
}
