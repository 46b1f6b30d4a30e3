import type { SiteStatus } from '@causeway/core'

/** GET /v1/status as served by `causeway serve`: the engine's view plus the transport's. */
export type NodeStatus = SiteStatus & { peerId?: string; addrs?: string[]; transport?: Record<string, string> }

function pad(s: string, n: number): string { return s.length >= n ? s : s + ' '.repeat(n - s.length) }

/** The `causeway status` table: one row per peer. */
export function formatStatus(s: NodeStatus): string {
  const withLink = s.transport !== undefined
  const rows = [['PEER', 'STATE', ...(withLink ? ['LINK'] : []), 'LAST SEEN', 'PENDING OUT']]
  for (const p of s.peers) {
    rows.push([
      p.id,
      p.state,
      ...(withLink ? [s.transport?.[p.id] ?? '-'] : []),
      p.lastSeenMs === undefined ? '-' : `${(p.lastSeenMs / 1000).toFixed(1)}s ago`,
      String(p.pendingOut),
    ])
  }
  // Why a peer is refused (configuration agreement): printed under the table, one line each.
  const reasons = s.peers.filter((p) => p.reason !== undefined).map((p) => `${p.id}: ${p.state}: ${p.reason}`)
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const lines = [`site ${s.id}${s.peerId === undefined ? '' : ` (${s.peerId})`}  pending in: ${s.pendingIn}`]
  for (const r of rows) lines.push(r.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd())
  lines.push(...reasons)
  return lines.join('\n')
}
