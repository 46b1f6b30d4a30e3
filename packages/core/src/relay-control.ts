import { PRUNE_STALL_BEATS } from './limits.js'
import type { PeerLink } from './peer-link.js'
import type { Streams } from './streams.js'

/**
 * Which relays a site keeps, and re-asking what got lost (replication.ts calls it).
 *
 * Pruning (Plumtree-style): per origin, the first peer to deliver its writes is the preferred path;
 * a peer that delivers a duplicate is asked (in its next beat, `prune`) not to relay that origin.
 * A pruned peer is asked again when the preferred peer's connection goes down, or when it holds
 * more of the origin than we do while we made no progress on it for PRUNE_STALL_BEATS beats.
 *
 * Re-asking: a peer known to hold more of a stream it sends us than we accepted, with a whole beat
 * bringing none of it, lost frames with no later frame to show the gap: `nack` it.
 */
export class RelayControl {
  /** Per origin, the peer whose relay of it we keep (the first to deliver it); others are pruned. */
  private readonly preferred = new Map<string, string>()
  /** Per origin, the sum of its streams' accepted seqs at the last check (progress detection). */
  private readonly progressAt = new Map<string, number>()
  /** Per stream, what was accepted at the last beat (stall detection). */
  private readonly acceptedAtBeat = new Map<string, number>()

  constructor(
    private readonly siteId: string,
    private readonly streams: Streams,
  ) {}

  /** A duplicate of `origin`'s write came from `p`: true if p is newly asked to stop relaying it. */
  duplicate(p: PeerLink, origin: string): boolean {
    const via = this.preferred.get(origin)
    if (via === undefined || via === p.id || origin === p.id || p.pruneOut.has(origin)) return false
    p.pruneOut.set(origin, 0)
    return true
  }

  /** A new write of `origin` came from `p`: the first path (or the origin itself) is preferred. */
  accepted(p: PeerLink, origin: string): void {
    if (origin === p.id || !this.preferred.has(origin)) this.preferred.set(origin, p.id)
  }

  /** `peer`'s connection went down: the origins it carried may come from every other peer again. */
  down(peer: string, peers: Iterable<PeerLink>): void {
    const lost: string[] = []
    for (const [origin, via] of this.preferred) if (via === peer) lost.push(origin)
    if (lost.length === 0) return
    const all = [...peers]
    for (const origin of lost) {
      this.preferred.delete(origin)
      for (const q of all) q.pruneOut.delete(origin)
    }
  }

  /** A heartbeat: un-prune stalled paths; re-ask streams that made no progress although a peer has more. */
  tick(peers: Iterable<PeerLink>, firstHand: ReadonlySet<string>, receivesFrom: (p: PeerLink) => boolean, nack: (p: PeerLink, stream: string, have: number) => void): void {
    const all = [...peers]
    this.checkPrunes(all)
    for (const p of all) {
      if (!p.up || !p.helloIn || p.inboundDepth > 0 || !receivesFrom(p)) continue
      for (const [sid, q] of p.known) {
        const s = this.streams.get(sid)
        if (!s || q <= s.accepted || s.origin === this.siteId) continue
        // Only streams this peer does send us: its own, or relayed ones we neither pruned nor hear first-hand.
        if (s.origin !== p.id && (p.pruneOut.has(s.origin) || firstHand.has(s.origin))) continue
        if (this.acceptedAtBeat.get(sid) === s.accepted) nack(p, sid, s.accepted)
      }
    }
    for (const s of this.streams.values()) this.acceptedAtBeat.set(s.id, s.accepted)
  }

  private checkPrunes(peers: PeerLink[]): void {
    let progress: Map<string, number> | undefined
    for (const q of peers) {
      if (q.pruneOut.size === 0 || !q.up) continue
      if (!progress) {
        progress = new Map()
        for (const s of this.streams.values()) progress.set(s.origin, (progress.get(s.origin) ?? 0) + s.accepted)
      }
      const ahead = new Set<string>()
      for (const [sid, n] of q.known) {
        const origin = sid.slice(0, sid.indexOf('/'))
        if (q.pruneOut.has(origin) && n > (this.streams.get(sid)?.accepted ?? 0)) ahead.add(origin)
      }
      for (const [origin, beats] of q.pruneOut) {
        const moved = (progress.get(origin) ?? 0) !== this.progressAt.get(origin)
        if (!ahead.has(origin) || moved) q.pruneOut.set(origin, 0)
        else if (beats + 1 < PRUNE_STALL_BEATS) q.pruneOut.set(origin, beats + 1)
        else {
          // Merely being behind a faster path is not a stall: that is the price of one copy per write.
          q.pruneOut.delete(origin)
          this.preferred.set(origin, q.id)
        }
      }
    }
    if (progress) for (const [o, n] of progress) this.progressAt.set(o, n)
  }
}
