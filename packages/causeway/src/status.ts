import type { SiteStatus } from '@causeway/core'

function pad(s: string, n: number): string { return s.length >= n ? s : s + ' '.repeat(n - s.length) }

/** The `causeway status` table: one row per peer. */
export function formatStatus(s: SiteStatus & { peerId?: string }): string {
  const rows = [['PEER', 'STATE', 'LAST SEEN', 'PENDING OUT']]
  for (const p of s.peers) rows.push([p.id, p.state, p.lastSeenMs === undefined ? '-' : `${(p.lastSeenMs / 1000).toFixed(1)}s ago`, String(p.pendingOut)])
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const lines = [`site ${s.id}${s.peerId === undefined ? '' : ` (${s.peerId})`}  pending in: ${s.pendingIn}`]
  for (const r of rows) lines.push(r.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd())
  return lines.join('\n')
}

