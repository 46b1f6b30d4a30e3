import type { LamportClock } from './clock.js'
import type { StreamId } from './context.js'
import { COLLECT_KEYS_PER_PASS, TRIM_MIN_ENTRIES } from './limits.js'
import type { NetworkAdapter } from './network.js'
import type { Report } from './protocol.js'
import type { Gossip, PeerView } from './replication.js'
import type { Shard } from './shard.js'
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
 * Causal stability: the applied-vector reports gossiped in beats, tombstone collection (a
 * tombstone goes once its write is stable), and log trimming (entries every receiving peer holds).
 */
export class Stability implements Gossip {
  private epoch = 0
  /** Newest applied-vector report of every other site (gossiped in heartbeats). */
  private readonly reports = new Map<string, { site: string; epoch: number; av: Map<StreamId, number> }>()

  constructor(
    private readonly host: StabilityHost,
    private readonly streams: Streams,
    private readonly shards: readonly Shard[],
  ) {}

  record(reports: Report[]): void {
    for (const r of reports) {
      if (r.site === this.host.siteId) continue
      const cur = this.reports.get(r.site)
      if (!cur || cur.epoch < r.epoch) this.reports.set(r.site, { ...r, av: new Map(r.av) })
    }
  }

  outgoing(): Report[] {
    const reports: Report[] = [{ site: this.host.siteId, epoch: ++this.epoch, av: [...this.streams.values()].filter((s) => s.av > 0).map((s) => [s.id, s.av] as [StreamId, number]) }]
    for (const r of this.reports.values()) reports.push({ site: r.site, epoch: r.epoch, av: [...r.av] })
    return reports
  }

  /**
   * Causal stability of a write (stream, seq): every known site has applied it, and this site has
   * applied every write each of them had originated by then, so nothing concurrent with it can
   * still arrive here. Only then may its tombstone be reclaimed.
   */
  stable(stream: StreamId, seq: number): boolean {
    if (this.streams.av(stream) < seq) return false
    const sites = new Set<string>((this.host.network?.peers() ?? []).map((c) => c.site))
    for (const s of this.streams.values()) sites.add(s.origin)
    for (const r of this.reports.keys()) sites.add(r)
    sites.delete(this.host.siteId)
    for (const site of sites) {
      if (this.host.isRemoved?.(site)) {
        // A removed site reports no more, and its frames are refused: the writes of it that can
        // still arrive are those some live site holds. Wait until this site has applied every
        // one of them that any live site reports having applied.
        for (const r of this.reports.values()) {
          if (this.host.isRemoved?.(r.site)) continue
          for (const [sid, q] of r.av) if (sid.startsWith(site + '/') && this.streams.av(sid) < q) return false
        }
        continue
      }
      const r = this.reports.get(site)
      if (!r || (r.av.get(stream) ?? 0) < seq) return false
      for (const [sid, q] of r.av) if (sid.startsWith(site + '/') && this.streams.av(sid) < q) return false
    }
    return true
  }

  /** Reclaim causally stable tombstones (keys the shards marked when a tombstone was written). */
  async collectTombstones(): Promise<void> {
    for (const sh of this.shards) {
      const keys = await sh.tombstoneKeys(COLLECT_KEYS_PER_PASS)
      if (keys.length === 0) continue
      await new Promise<void>((resolve, reject) => sh.enqueue({ kind: 'gc', keys, stable: (s, q) => this.stable(s, q), resolve, reject }))
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
