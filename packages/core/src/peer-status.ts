import type { PeerConfig } from './network.js'
import type { PeerLink } from './peer-link.js'
import type { Streams } from './streams.js'
import type { PeerState, SiteStatus } from './types.js'

/** What a site's status is computed from (replication.ts gathers it). */
export interface StatusView {
  siteId: string
  configs: readonly PeerConfig[]
  nowMs: number
  removed: readonly string[]
  peers: ReadonlyMap<string, PeerLink>
  streams: Streams
  expired(site: string): boolean
}

/** `site.status()`: every configured peer's state and pendingOut, removed members, and pendingIn. */
export function siteStatus(v: StatusView): SiteStatus {
  const cfgs = v.configs
  const now = v.nowMs
  let pendingIn = 0
  for (const s of v.streams.values()) if (s.origin !== v.siteId) pendingIn += Math.max(0, s.rv - s.av)
  const removed = v.removed
  const listed = new Set(cfgs.map((c) => c.site))
  return {
    id: v.siteId,
    peers: [...cfgs.filter((c) => !removed.includes(c.site)).map((c) => {
      const p = v.peers.get(c.site)
      let pendingOut = 0
      if (c.send) {
        for (const s of v.streams.values()) {
          if (s.origin === c.site) continue
          pendingOut += Math.max(0, s.rv - (p?.known.get(s.id) ?? 0))
        }
      }
      let state: PeerState = 'unknown'
      if (p?.incompatible !== undefined) state = 'incompatible'
      else if (p?.up) {
        let behind = false
        for (const [sid, q] of p.known) if ((v.streams.get(sid)?.rv ?? 0) < q && c.receive && sid.slice(0, sid.indexOf('/')) !== v.siteId) behind = true
        state = pendingOut > 0 || behind || !p.helloIn ? 'synchronizing' : 'connected'
      } else if (v.expired(c.site)) state = 'expired'
      else if (p?.everSeen) state = 'disconnected'
      const out: SiteStatus['peers'][number] = { id: c.site, state, pendingOut }
      if (p?.everSeen) out.lastSeenMs = Math.max(0, now - p.lastSeenAt)
      if (p?.incompatible !== undefined) out.reason = p.incompatible
      return out
    }), ...removed.filter((s) => listed.has(s) || v.peers.has(s)).map((s) => {
      // Removed members stay visible (with 'removed') so an operator can see the removal took.
      const p = v.peers.get(s)
      const out: SiteStatus['peers'][number] = { id: s, state: 'removed', pendingOut: 0 }
      if (p?.everSeen) out.lastSeenMs = Math.max(0, now - p.lastSeenAt)
      return out
    })],
    pendingIn,
  }
}
