/** Lamport time (integer, physical-time seeded) + origin site. Total order: time, then site. */
export type Version = { time: number; site: string }

export type Value = null | boolean | number | string | Uint8Array | Date | Value[] | { [k: string]: Value }

export type Entry = {
  key: string
  value: Value
  version: Version
  siblings?: Array<{ value: Value; version: Version }>
}

/** 'incompatible': the peer's configuration (conflicts, scopes) differs; no writes are exchanged (`reason` says how). */
export type PeerState = 'connected' | 'synchronizing' | 'disconnected' | 'unknown' | 'removed' | 'expired' | 'incompatible'

export type SiteStatus = {
  id: string
  peers: Array<{ id: string; state: PeerState; lastSeenMs?: number; pendingOut: number; reason?: string }>
  pendingIn: number
}

export type MergeFunction = (a: Value, b: Value) => Value
export type ConflictMode = 'lww' | 'return-all' | MergeFunction
/** A merge function with a stable identity (sites compare configurations by it, not by the function's name). */
export type NamedMerge = { merge: MergeFunction; id: string }
export type ConflictSpec = ConflictMode | NamedMerge
export type ConflictOption = ConflictSpec | { default?: ConflictSpec; prefixes?: Record<string, ConflictSpec> }
/** Replication scopes: key prefix -> the ids of the sites that hold keys under it (longest prefix wins). */
export type ScopesOption = Record<string, string[]>
export type Durability = 'fsync' | 'relaxed'

/** Injected time source (TigerBeetle style): library code never calls Date.now() itself. */
export interface Clock {
  /** Wall-clock milliseconds; used to seed Lamport times and for timers' bookkeeping. */
  nowMs(): number
}

/** Cancels a timer; calling it again, or after the timer fired, does nothing. */
export type CancelTimer = () => void

export interface TimerOptions {
  /**
   * Whether the pending timer keeps the process alive (default false). An operation with a deadline
   * (a session waiting for its context, idle(timeoutMs)) must, so it settles before the process can
   * exit; background work (heartbeats) must not, so an idle site never holds a process open.
   */
  keepAlive?: boolean
}

/**
 * Injected timers (with Clock, everything a site knows about time): the system's by default, a
 * simulator's virtual ones in deterministic runs. Callbacks never run synchronously inside after()/every().
 */
export interface Timers {
  /** Runs fn once, ms milliseconds from now. */
  after(ms: number, fn: () => void, options?: TimerOptions): CancelTimer
  /** Runs fn every ms milliseconds until cancelled. */
  every(ms: number, fn: () => void, options?: TimerOptions): CancelTimer
}

/** Injected randomness: a function returning a float in [0, 1). */
export type Random = () => number

export function compareVersions(a: Version, b: Version): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1
  if (a.site === b.site) return 0
  return a.site < b.site ? -1 : 1
}
