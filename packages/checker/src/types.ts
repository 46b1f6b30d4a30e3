import type { Entry, Value, Version } from '@causeway/core'

export type { Entry, Value, Version }

export type ViolationKind =
  | 'CyclicCO'
  | 'WriteCOInitRead'
  | 'ThinAirRead'
  | 'WriteCORead'
  | 'CyclicCF'
  | 'Divergence'
  | 'FinalState'

export interface Violation {
  kind: ViolationKind
  detail: string
}

/** One write of an atomic multi-key write (Session.write). */
export type WriteSpec = { key: string; value: Value } | { key: string; delete: true }

interface OpBase {
  /** The site the operation ran at (details only). */
  site: string
  /** Globally unique session id; the same id at another site = the session continued there. */
  session: string
}

export type HistoryOp =
  | (OpBase & { kind: 'put'; key: string; value: Value; version?: Version })
  | (OpBase & { kind: 'delete'; key: string; version?: Version })
  | (OpBase & { kind: 'write'; ops: WriteSpec[]; version?: Version })
  | (OpBase & { kind: 'get'; key: string; result: Entry | undefined })
  /** keys: what was asked (absent ones are reads of "absent"); omitted: only the returned keys count. */
  | (OpBase & { kind: 'getMany'; keys?: string[]; result: Map<string, Entry> })

/** Records one session's operations in call order (append after each operation resolves). */
export interface SessionRecorder {
  readonly site: string
  readonly id: string
  recordPut(key: string, value: Value, version?: Version): void
  recordDelete(key: string, version?: Version): void
  recordWrite(ops: WriteSpec[], version?: Version): void
  recordGet(key: string, result: Entry | undefined): void
  /** `keys` lets the checker know which requested keys were absent. */
  recordGetMany(keys: Iterable<string>, result: Map<string, Entry>): void
  recordGetMany(result: Map<string, Entry>): void
}

export interface History {
  readonly ops: readonly HistoryOp[]
  /** A recorder for a session; calling it again with the same ids returns a recorder of the same session. */
  session(site: string, sessionId: string): SessionRecorder
  record(op: HistoryOp): void
}

export type CheckerConflictMode = 'lww' | 'return-all'

/** Like openSite's `conflicts` (merge functions are not supported by the checker). */
export type CheckerConflicts =
  | CheckerConflictMode
  | { default?: CheckerConflictMode; prefixes?: Record<string, CheckerConflictMode> }
  | ((key: string) => CheckerConflictMode)

export interface CheckOptions {
  /** Per site, per key: what a get returned after settle (convergence check). */
  finalReads?: Map<string, Map<string, Entry | undefined>>
  /**
   * The final reads were taken after every write reached every site (full connectivity, settle):
   * also check that they reflect the whole history (kind FinalState). Default false.
   */
  complete?: boolean
  /** Conflict mode per key. Default: 'return-all' for keys some read returned siblings for, else 'lww'. */
  conflicts?: CheckerConflicts
  /**
   * Return-all supersession: a session remembers what it observed of at most this many keys, most
   * recent first (default 256, the engine's MAX_OBSERVED_KEYS); older ones supersede nothing.
   */
  observedKeysLimit?: number
  /** Stop recording details after this many violations (default 1000; `counts` stays exact). */
  maxViolations?: number
}

export interface CheckResult {
  ok: boolean
  violations: Violation[]
  counts: Record<ViolationKind, number>
  stats: { events: number; sessions: number; writes: number; reads: number }
}
