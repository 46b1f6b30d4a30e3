import { createHash } from 'node:crypto'
import { describeConflicts } from './conflict.js'
import type { Scopes } from './scopes.js'

/**
 * Configuration agreement: sites whose `conflicts` or `scopes` differ would silently diverge, so
 * each hello carries a digest of both and a mismatch is refused on both sides (replication.ts).
 * Format: `c=<hex>;s=<hex>` (one part per option, so a refusal can say which one differs).
 */
export const CONFIG_DIGEST_RE = /^c=[0-9a-f]{16};s=[0-9a-f]{16}$/

function h(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16)
}

export function configDigest(conflicts: unknown, scopes: Scopes): string {
  return `c=${h(describeConflicts(conflicts))};s=${h(scopes.describe())}`
}

/**
 * Why two digests are incompatible, or undefined when they agree. A peer that announces no digest
 * (an older build, a test double) is tolerated: it cannot be checked, and refusing it would split
 * a rolling upgrade; the caller warns about it.
 */
export function digestMismatch(mine: string, theirs: string | undefined): string | undefined {
  if (theirs === undefined || mine === theirs) return undefined
  const [mc, ms] = mine.split(';')
  const [tc, ts] = theirs.split(';')
  const what: string[] = []
  if (mc !== tc) what.push('conflicts')
  if (ms !== ts) what.push('scopes')
  return `the peer's ${what.join(' and ')} configuration differs from this site's (digest ${theirs}, here ${mine})`
}
