import type { AbstractLevel } from 'abstract-level'
import type { NetworkAdapter } from './network.js'
import type { Clock, Timers, ConflictMode, ConflictOption, Durability, Entry, ScopesOption, SiteStatus, Value, Version } from './types.js'

/** A LevelDB-like database holding one shard: string keys, binary values. */
export type ShardDb = AbstractLevel<string | Uint8Array, string, Uint8Array>

/**
 * What a storage backend offers (abstract-level's `supports` manifest is the model); it decides
 * what the site checks when it opens.
 */
export interface StorageSupports {
  /** Data survives close and reopen (then the site guards its id and shard count). */
  persistent: boolean
  /** A second opener of the same data fails with LOCKED. */
  locking: boolean
}

/**
 * Opens the database of shard `index`; `dir` is the site's directory (undefined: in memory).
 * Optional `supports` refines the manifest; by default it is read from the db's own `db.supports`
 * (`permanence`), and a persistent custom storage keeps the site guard in the db itself.
 */
export interface StorageFactory {
  (index: number, dir: string | undefined): ShardDb
  supports?: Partial<StorageSupports>
}

export interface OpenSiteOptions {
  id: string
  dir?: string
  shards?: number
  conflicts?: ConflictOption
  /**
   * Replication scopes: key prefix -> member site ids (longest prefix wins). A scoped key lives only
   * at its scope's members; other sites refuse its writes and local reads with OUT_OF_SCOPE. Must be
   * the same at every site, like `conflicts` (a peer configured otherwise is 'incompatible').
   */
  scopes?: ScopesOption
  durability?: Durability
  network?: NetworkAdapter
  /** Max encoded value size in bytes (default 1 MiB). */
  maxValueBytes?: number
  /** 'level' (classic-level under dir, the default) or 'memory' (memory-level, tests), or a factory. */
  storage?: 'level' | 'memory' | StorageFactory
  /** Injected wall clock (default: the system clock). */
  clock?: Clock
  /** Injected timers (default: the system's); every timer of the site goes through them. */
  timers?: Timers
  /** Cached key states per shard (default 100_000). */
  cacheEntries?: number
  /** Interval of heartbeats / progress gossip to peers (default 1000 ms). */
  heartbeatMs?: number
  /**
   * Per key prefix (longest wins): a queued write older than this many ms when it is about to be
   * sent is dropped on the way (an expired stub is sent instead), for data worthless when late.
   * Weakens causality for those keys only: a later write may be visible without the expired one.
   */
  ttl?: Record<string, number>
  /**
   * How far ahead of this site's physical clock a time from outside (a context token, a peer's
   * write) may be, in ms (default 60_000). Beyond it a token is refused with CLOCK_SKEW and a
   * peer's write waits (asked for again at heartbeats) until this site's clock catches up.
   */
  maxClockSkewMs?: number
  /**
   * When a peer claims more of this site's own stream than this site holds (restored from a
   * backup), new writes to that stream wait while the entries are fetched from the peer; after this
   * many ms without them the peer is treated as faulty and writing resumes (default 10_000).
   */
  recoveryTimeoutMs?: number
  /**
   * A new site copies a causally consistent snapshot from this peer (every key with its versions
   * and siblings, and the vector it reflects), then replicates normally; openSite resolves once it
   * is installed. Ignored when `dir` already holds a site. Needs a network that lists the source.
   */
  bootstrap?: string
  /**
   * A peer silent (not connected) for longer than this many ms stops holding back log trimming and
   * shows as 'expired' in status (default 7 days). Entries trimmed meanwhile cannot reach it any more.
   */
  offlineHorizonMs?: number
  /** openSite rejects with BOOTSTRAP_FAILED after this many ms of bootstrap (default 60_000). */
  bootstrapTimeoutMs?: number
  /** Log sink for dropped frames and peer errors (default: silent). */
  logger?: Logger
}

export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface SessionOptions {
  /** A token from another session's context(): continue that session here. */
  context?: string
  /** How long the first operation waits for the context's dependencies (default 0). */
  waitMs?: number
}

/** One operation of an atomic multi-key write (write-only transaction). */
export type WriteOp = { key: string; value: Value } | { key: string; delete: true }

/** Options of a read. */
export interface ReadOptions {
  /**
   * Read keys this site does not hold (outside its scopes) from a member site, which answers once
   * everything this session has seen is visible there. Later operations of the session see
   * everything the value depended on (they wait for it, like a continued session).
   */
  remote?: boolean
  /** How long a remote read waits for a member's answer (default 2000 ms); then UNAVAILABLE. */
  waitMs?: number
}

export interface Session {
  put(key: string, value: Value): Promise<Version>
  get(key: string, options?: ReadOptions): Promise<Entry | undefined>
  delete(key: string): Promise<Version>
  getMany(keys: Iterable<string>, options?: ReadOptions): Promise<Map<string, Entry>>
  /**
   * Atomic multi-key write (Eiger-style write-only transaction): at every site, all of the ops
   * become visible together or none does. All ops share one version. Keys must be distinct.
   */
  write(ops: WriteOp[]): Promise<Version>
  /** Opaque token of the session's causal context. */
  context(): string
}

/** A secondary index maintained by the site, atomically with every change to a key under `prefix`. */
export interface IndexDefinition {
  /** [a-z0-9_-]+ */
  name: string
  /** Keys this index covers. */
  prefix: string
  /** Changes whenever `terms` changes meaning; a changed fingerprint rebuilds the index. */
  fingerprint: string
  /**
   * Index terms of a key's current value (the entry `get` would return; undefined when absent).
   * Terms are strings without U+0000; they sort lexicographically (by UTF-16 code units).
   */
  terms(key: string, entry: Entry | undefined): string[]
}

export interface ScanOptions {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  reverse?: boolean
  limit?: number
}

export interface ScanKeysOptions extends ScanOptions {
  /** Keys strictly after this one (keyset pagination); combines with gt/gte. */
  after?: string
}

export interface Site {
  readonly id: string
  session(options?: SessionOptions): Session
  status(): SiteStatus
  close(): Promise<void>
  /** The conflict handling configured for a key (the prefix rules of openSite's `conflicts`). */
  conflictMode(key: string): ConflictMode
  /** A fresh version from the site's Lamport clock (greater than every version this site has seen). */
  tick(): Version
  /** Register (and build or rebuild if needed) a secondary index. Resolves when it is consistent. */
  ensureIndex(def: IndexDefinition): Promise<void>
  /** Range scan of an index across all shards, in term order then key order. */
  scanIndex(name: string, options?: ScanOptions): AsyncIterable<{ term: string; key: string }>
  /**
   * Keys with a prefix across all shards, in key order (live keys only). Bounds are whole keys;
   * several lower (or upper) bounds combine to the tightest; `reverse` walks from the upper end.
   */
  scanKeys(prefix: string, options?: ScanKeysOptions): AsyncIterable<string>
  /** Wait until every write this site has received is applied (or timeoutMs passes; rejects TIMEOUT). */
  idle(timeoutMs?: number): Promise<void>
  /** Reclaim causally stable tombstones now (the site also does it every 10 heartbeats). */
  gc(): Promise<void>
  /**
   * Remove site `id` from the deployment for good: the removal spreads to every site, no site
   * waits for `id` any more (log trimming, tombstone collection), what it wrote that any site
   * holds still reaches every site, and its frames are refused. Resolves once recorded here.
   */
  removeMember(id: string): Promise<void>
  /** Subscribe to applied writes (local and remote): called with the keys changed. Returns unsubscribe. */
  onApplied(listener: (keys: string[], origin: string) => void): () => void
  /**
   * Called once if the site stops itself after a storage failure (every later operation rejects
   * STORAGE_ERROR); at once if it already has. Lets a server exit so its supervisor restarts it.
   */
  onFailure(listener: (err: Error) => void): () => void
}
