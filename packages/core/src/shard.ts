import type { ShardDb, IndexDefinition, ScanOptions } from './api.js'
import { decodeUntrusted, encode } from './codec.js'
import { applyToState, stateFromWire, stateToWire, viewOf, type KeyState, type Resolver } from './conflict.js'
import type { Dot, StreamId } from './context.js'
import { encodeEntry, type WriteEntry, type WriteEntryOp } from './entry.js'
import { CausewayError, invariant } from './errors.js'
import type { LamportClock } from './clock.js'
import type { Version } from './types.js'
import { KEY_FILTER_SCAN_BATCH, MAX_ITEMS_PER_BATCH, MAX_QUEUED_ITEMS } from './limits.js'
import { KeyFilter, TermFilter } from './key-filter.js'

import { appliedKey, BOOTSTRAP_KEY, CLOCK_KEY, DATA_RANGES, indexBase, indexKey, indexScanRange, logKey, logPrefix, removedKey, stateKey, tombKey, trimmedKey } from './layout.js'
import { ShardStore } from './shard-store.js'

// The shard is the only owner of its database and of the key layout (layout.ts): the site asks it
// for log ranges, recovery scans, trims, index clears and scans (ShardStore, its read side), and
// queues every write, which it commits in batches (here).
export { parseIndexKey, type KeyIterator, type ShardMeta } from './shard-store.js'
import type { KeyIterator } from './shard-store.js'

/** What a shard needs from its site (injected, so a shard knows nothing of networks or sessions). */
export interface ShardHost {
  readonly siteId: string
  readonly clock: LamportClock
  readonly fsync: boolean
  readonly modeOf: Resolver
  indexesFor(key: string): IndexDefinition[]
  /** Next local sequence number of stream `<site>/<shard>` (allocated at batch build time). */
  allocSeq(shard: number): number
  /** Roll back allocations after a failed batch, so the stream never has a gap. */
  releaseSeq(shard: number, seq: number): void
  /** The shard's queue ran empty (wakes whoever waits for the site to be idle). */
  workDone(): void
}

export interface LocalWriteItem {
  kind: 'local'
  ops: WriteEntryOp[]
  deps: Dot[]
  /** The new version must exceed this time (everything the session has seen). */
  atLeastTime: number
  /** true: a multi-shard write, logged here; its other shards apply it afterwards (applier round). */
  logOnly: boolean
  /**
   * A multi-shard write's ops on this (its log) shard: staged in the log's own batch, with this
   * shard's applied mark, so only the other shards need an apply batch; visible with the round.
   */
  stageOps?: WriteEntryOp[]
  resolve: (r: { entry: WriteEntry; bytes: Uint8Array }) => void
  reject: (e: unknown) => void
}
export interface ApplyItem {
  kind: 'apply'
  entry: WriteEntry
  ops: WriteEntryOp[]
  /** Staged states become visible only when the site installs all shards of the entry together. */
  stage: boolean
  resolve: (states: Map<string, KeyState>) => void
  reject: (e: unknown) => void
}
export interface LogItem {
  kind: 'log'
  stream: StreamId
  entries: Array<{ seq: number; bytes: Uint8Array; time: number }>
  resolve: () => void
  reject: (e: unknown) => void
}
export interface ReindexItem {
  kind: 'reindex'
  index: IndexDefinition
  keys: string[]
  resolve: () => void
  reject: (e: unknown) => void
}
export interface GcItem {
  kind: 'gc'
  keys: string[]
  /** Is the write (stream, seq) causally stable? */
  stable: (stream: StreamId, seq: number) => boolean
  resolve: () => void
  reject: (e: unknown) => void
}
/** Drop the log entries of a stream up to `upTo` (the new floor), keeping the clock's high-water mark. */
export interface TrimItem {
  kind: 'trim'
  stream: StreamId
  upTo: number
  clock: number
  resolve: () => void
  reject: (e: unknown) => void
}
type BatchItem = LocalWriteItem | ApplyItem | LogItem | ReindexItem | GcItem
export type ShardItem = BatchItem | TrimItem


type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }

export class Shard extends ShardStore {
  readonly cache = new Map<string, KeyState>()
  /** States written to disk but not yet visible (multi-shard writes waiting for their other shards). */
  readonly staged = new Map<string, KeyState>()
  private queue: ShardItem[] = []
  private flushing = false
  private loadsInFlight = 0
  private pins = 0
  closed = false
  /** Keys that may have a state here: reads of the others need no storage call. */
  readonly filter = new KeyFilter()
  /** Index terms that may have records here: scans that cannot match skip this shard's iterator. */
  readonly terms = new TermFilter()
  private readonly filterBuild: Promise<void>

  constructor(
    readonly index: number,
    db: ShardDb,
    private readonly host: ShardHost,
    private readonly maxCacheEntries: number,
  ) {
    super(db)
    // Every write adds its keys from now on, so the scan only has to cover what is already stored;
    // until it is done the filter answers "maybe" and reads go to storage.
    this.filterBuild = this.buildFilter()
  }

  private async buildFilter(): Promise<void> {
    try {
      for await (const keys of this.stateKeyBatches(KEY_FILTER_SCAN_BATCH, () => this.closed)) for (const k of keys) this.filter.add(k)
      if (!this.closed) this.filter.markReady()
      for await (const recs of this.indexTermBatches(KEY_FILTER_SCAN_BATCH, () => this.closed)) for (const r of recs) this.terms.addTerm(r.name, r.term)
      if (!this.closed) this.terms.keys.markReady()
    } catch {
      // A failed scan leaves the filter unready (every read goes to storage); the storage failure
      // itself surfaces on the next read or write.
    }
  }

  get busy(): boolean {
    return this.flushing || this.queue.length > 0 || this.deferred.length > 0
  }

  enqueue(item: ShardItem): void {
    invariant(!this.closed, 'enqueue on a closed shard')
    this.queue.push(item)
    if (!this.flushing) void this.flushLoop()
  }

  private spaceWaiters: Array<() => void> = []

  /** Back-pressure for new local writes: wait while the queue is at its bound. */
  async admit(): Promise<void> {
    while (this.queue.length >= MAX_QUEUED_ITEMS) await new Promise<void>((r) => this.spaceWaiters.push(r))
  }

  pin(): void {
    this.pins++
  }
  unpin(): void {
    this.pins--
    this.evict()
  }

  /** Make sure the committed states of `keys` are in the cache (reads see only committed state). */
  async load(keys: string[]): Promise<void> {
    const missing: string[] = []
    let known = false
    for (const k of keys) {
      if (this.cache.has(k)) continue
      // Never written here: its committed state is empty, no read needed (the common case of new keys).
      if (!this.filter.mayHave(k)) {
        this.cache.set(k, [])
        known = true
      } else missing.push(k)
    }
    if (missing.length === 0) {
      if (known) this.evict()
      return
    }
    this.loadsInFlight++
    try {
      const vals = await this.db.getMany(missing.map((k) => stateKey(k)))
      for (let i = 0; i < missing.length; i++) {
        const k = missing[i]!
        // A commit that raced with this read has already installed a newer state: keep it.
        if (this.cache.has(k)) continue
        const v = vals[i]
        this.cache.set(k, v === undefined ? [] : stateFromWire(decodeUntrusted(v)))
      }
    } finally {
      this.loadsInFlight--
    }
    this.evict()
  }

  /** A scan of an index on this shard; no storage iterator when no record can be in its range. */
  override indexIterator(name: string, options: ScanOptions, reverse: boolean, limit: number): KeyIterator {
    const range = indexScanRange(name, options)
    const base = indexBase(name)
    const upper = range.lt!.startsWith(base) ? range.lt!.slice(base.length) : undefined
    if (!this.terms.mayHaveRange(name, range.gte!.slice(base.length), upper)) return NO_KEYS
    return super.indexIterator(name, options, reverse, limit)
  }

  /** Committed state of a key; call after load() in the same synchronous step. */
  peek(key: string): KeyState {
    const s = this.cache.get(key)
    invariant(s !== undefined, 'peek of an unloaded key')
    return s
  }

  private evict(): void {
    // Never evict while a read is in flight (it could re-insert a stale state) or a snapshot is pinned.
    if (this.loadsInFlight > 0 || this.pins > 0 || this.cache.size <= this.maxCacheEntries) return
    let excess = this.cache.size - this.maxCacheEntries
    for (const k of this.cache.keys()) {
      if (excess <= 0) break
      if (this.staged.has(k)) continue
      this.cache.delete(k)
      excess--
    }
  }

  /** Make staged keys visible (the multi-shard writes that staged them are complete everywhere). */
  installStaged(keys: Iterable<string>): void {
    for (const k of keys) {
      const s = this.staged.get(k)
      if (s === undefined) continue
      this.staged.delete(k)
      this.cache.set(k, s)
    }
    if (this.deferred.length > 0) {
      const d = this.deferred
      this.deferred = []
      this.queue.unshift(...d)
      if (!this.flushing) void this.flushLoop()
    }
    this.evict()
  }


  /** The state writes build on: staged (written, not yet visible) before committed. */
  private baseState(key: string): KeyState {
    return this.staged.get(key) ?? this.peek(key)
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true
    try {
      while (this.queue.length > 0) {
        const items = this.queue.splice(0, MAX_ITEMS_PER_BATCH)
        if (this.spaceWaiters.length > 0) {
          const w = this.spaceWaiters
          this.spaceWaiters = []
          for (const r of w) r()
        }
        const trims: TrimItem[] = []
        const batch: BatchItem[] = []
        for (const it of items) {
          if (it.kind === 'trim') trims.push(it)
          else batch.push(it)
        }
        if (batch.length > 0) await this.flush(batch)
        for (const t of trims) await this.trim(t)
      }
    } finally {
      this.flushing = false
      this.host.workDone()
    }
  }

  /** Local puts on keys a multi-shard write has staged wait until it becomes visible (atomicity). */
  private deferred: ShardItem[] = []

  private async flush(all: BatchItem[]): Promise<void> {
    const items: BatchItem[] = []
    for (const it of all) {
      if (it.kind === 'local' && !it.logOnly && this.staged.size > 0 && it.ops.some((o) => this.staged.has(o.key))) this.deferred.push(it)
      else items.push(it)
    }
    if (items.length === 0) return
    const keys: string[] = []
    for (const it of items) {
      // A local LWW write needs no read: the site clock is above every version applied here, so the
      // new version dominates whatever the key holds (unless an index needs the old terms).
      if (it.kind === 'local') {
        for (const o of it.logOnly ? (it.stageOps ?? []) : it.ops) if (this.host.modeOf(o.key) !== 'lww' || this.host.indexesFor(o.key).length > 0) keys.push(o.key)
      }
      else if (it.kind === 'apply') for (const o of it.ops) keys.push(o.key)
      else if (it.kind === 'reindex' || it.kind === 'gc') keys.push(...it.keys)
    }
    this.pin()
    const allocated: number[] = []
    try {
      try {
        if (keys.length > 0) await this.load(keys)
      } catch (e) {
        for (const it of items) it.reject(new CausewayError('STORAGE_ERROR', 'shard read failed', { cause: e }))
        return
      }
      const ops: BatchOp[] = []
      const next = new Map<string, KeyState>() // states produced by this batch, in order
      const stagedNext = new Map<string, KeyState>()
      const results: Array<() => void> = []
      let sync = false
      const rmw = (key: string, w: Parameters<typeof applyToState>[1], stage: boolean, freshLocal = false): KeyState => {
        const mode = this.host.modeOf(key)
        // freshLocal: a version just issued by this site's clock, which dominates any state (see above).
        // A staged state is always the newest: local puts on staged keys are deferred (below).
        const before = stagedNext.get(key) ?? next.get(key) ?? this.staged.get(key) ?? this.cache.get(key) ?? (freshLocal && mode === 'lww' ? [] : this.peek(key))
        const after = applyToState(before, w, mode)
        if (after !== before) {
          this.filter.add(key) // before the write is issued: a concurrent read must not skip it
          // encode() returns a fresh copy (msgpackr reuses its buffer): no second copy needed.
          ops.push({ type: 'put', key: stateKey(key), value: encode(stateToWire(after)) })
          this.indexOps(key, before, after, ops)
          // Mark keys holding tombstones so the collector never scans the whole keyspace.
          const tomb = after.some((x) => x.value === undefined)
          if (tomb) ops.push({ type: 'put', key: tombKey(key), value: EMPTY })
          else if (before.some((x) => x.value === undefined)) ops.push({ type: 'del', key: tombKey(key) })
        }
        if (stage) stagedNext.set(key, after)
        else next.set(key, after)
        return after
      }
      for (const it of items) {
        switch (it.kind) {
          case 'local': {
            // Staged earlier in this very batch: it must not become visible before its round does.
            if (!it.logOnly && stagedNext.size > 0 && it.ops.some((o) => stagedNext.has(o.key))) {
              this.deferred.push(it)
              break
            }
            sync ||= this.host.fsync
            const seq = this.host.allocSeq(this.index)
            allocated.push(seq)
            const v: Version = this.host.clock.tick(it.atLeastTime)
            const entry: WriteEntry = { stream: `${this.host.siteId}/${this.index}`, seq, time: v.time, site: v.site, deps: it.deps, ops: it.ops }
            const bytes = encodeEntry(entry)
            // The log entry alone records the stream's progress and the clock (recovery reads them back).
            ops.push({ type: 'put', key: logKey(entry.stream, seq), value: bytes })
            if (!it.logOnly) {
              for (const o of it.ops) rmw(o.key, { time: v.time, site: v.site, stream: entry.stream, seq, value: o.value, supersedes: o.supersedes }, false, true)
            } else if (it.stageOps !== undefined && it.stageOps.length > 0) {
              // Recovery sees this shard's part as applied (the mark) and redoes the write only where
              // another shard lacks it; a redo here is a duplicate, which applyToState ignores.
              for (const o of it.stageOps) rmw(o.key, { time: v.time, site: v.site, stream: entry.stream, seq, value: o.value, supersedes: o.supersedes }, true, true)
              ops.push({ type: 'put', key: appliedKey(entry.stream), value: encode(seq) })
            }
            results.push(() => it.resolve({ entry, bytes }))
            break
          }
          case 'apply': {
            const e = it.entry
            const changed = new Map<string, KeyState>()
            for (const o of it.ops) {
              changed.set(o.key, rmw(o.key, { time: e.time, site: e.site, stream: e.stream, seq: e.seq, value: o.value, supersedes: o.supersedes }, it.stage))
            }
            ops.push({ type: 'put', key: appliedKey(e.stream), value: encode(e.seq) })
            results.push(() => it.resolve(changed))
            break
          }
          case 'log': {
            sync ||= this.host.fsync
            for (const en of it.entries) {
              ops.push({ type: 'put', key: logKey(it.stream, en.seq), value: en.bytes })
            }
            results.push(() => it.resolve())
            break
          }
          case 'gc': {
            for (const key of it.keys) {
              if (this.staged.has(key) || stagedNext.has(key)) continue // in flight: next pass
              const state = stagedNext.get(key) ?? next.get(key) ?? this.baseState(key)
              const kept = state.filter((x) => x.value !== undefined || !it.stable(x.stream, x.seq))
              if (kept.some((x) => x.value === undefined)) continue
              ops.push({ type: 'del', key: tombKey(key) })
              if (kept.length === state.length) continue
              if (kept.length === 0) ops.push({ type: 'del', key: stateKey(key) })
              else ops.push({ type: 'put', key: stateKey(key), value: encode(stateToWire(kept)) })
              next.set(key, kept)
            }
            results.push(() => it.resolve())
            break
          }
          case 'reindex': {
            for (const key of it.keys) {
              const state = next.get(key) ?? this.baseState(key)
              const entry = viewOf(key, state, this.host.modeOf(key))
              for (const t of safeTerms(it.index, key, entry)) {
                this.terms.addTerm(it.index.name, t)
                ops.push({ type: 'put', key: indexKey(it.index.name, t, key), value: EMPTY })
              }
            }
            results.push(() => it.resolve())
            break
          }
        }
      }
      try {
        // The chained form: classic-level's array batch costs ~4x more CPU per operation.
        const batch = this.db.batch()
        for (const op of ops) {
          if (op.type === 'put') batch.put(op.key, op.value)
          else batch.del(op.key)
        }
        await batch.write({ sync } as never)
      } catch (e) {
        // Nothing of this batch is on disk: give back the sequence numbers so streams stay gapless.
        for (let i = allocated.length - 1; i >= 0; i--) this.host.releaseSeq(this.index, allocated[i]!)
        const err = new CausewayError('STORAGE_ERROR', 'shard write failed', { cause: e })
        for (const it of items) it.reject(err)
        return
      }
      // Visible only now that it is durable (per the durability mode).
      for (const [k, s] of next) this.cache.set(k, s)
      for (const [k, s] of stagedNext) this.staged.set(k, s)
      for (const r of results) r()
    } finally {
      this.unpin()
    }
  }

  /** Drop trimmed log entries (through the queue, so it never races this shard's batches). */
  private async trim(t: TrimItem): Promise<void> {
    try {
      // The trimmed entries carried clock times: keep the high-water mark before dropping them.
      // The floor goes first too: the log's last entry is the stream's position, so a failure
      // between the two steps must leave entries below the floor (cleared by the next trim, which
      // starts at the stream's first entry), never a stream with neither entries nor floor.
      await this.db.batch([
        { type: 'put', key: trimmedKey(t.stream), value: encode(t.upTo) },
        { type: 'put', key: CLOCK_KEY, value: encode(t.clock) },
      ])
      await this.db.clear({ gte: logPrefix(t.stream), lte: logKey(t.stream, t.upTo) })
    } catch (e) {
      t.reject(e)
      return
    }
    t.resolve()
  }

  /** Record a removed member (membership.ts): a meta record of its own, durable before it counts. */
  async markRemoved(site: string): Promise<void> {
    await this.db.put(removedKey(site), encode(1), { sync: true } as never)
  }

  /**
   * Bootstrap (bootstrap.ts): write snapshot states as they are (they are already merged results),
   * with their tombstone marks. Only while the site is not serving (no queue, no readers).
   */
  async installStates(states: Array<[string, KeyState]>): Promise<void> {
    invariant(!this.busy, 'installStates on a busy shard')
    const batch = this.db.batch()
    for (const [k, st] of states) {
      this.filter.add(k) // before the write: reads must not skip an installed key
      batch.put(stateKey(k), encode(stateToWire(st)))
      if (st.some((x) => x.value === undefined)) batch.put(tombKey(k), EMPTY)
      else batch.del(tombKey(k))
      this.cache.delete(k)
    }
    await batch.write({ sync: this.host.fsync } as never)
  }

  /** Bootstrap cut short by a crash: drop every key state, tombstone mark and index record. */
  async clearData(): Promise<void> {
    for (const r of DATA_RANGES) await this.db.clear(r)
    this.cache.clear()
  }

  /** The bootstrap mark (see layout.ts): written durably. */
  async markBootstrap(n: number): Promise<void> {
    await this.db.put(BOOTSTRAP_KEY, encode(n), { sync: true } as never)
  }

  /** Stop taking work and close the database. */
  override async close(): Promise<void> {
    this.closed = true
    await this.filterBuild // stops at its next batch; its iterator must close before the db
    await super.close()
  }

  private indexOps(key: string, before: KeyState, after: KeyState, ops: BatchOp[]): void {
    const defs = this.host.indexesFor(key)
    if (defs.length === 0) return
    const mode = this.host.modeOf(key)
    const vb = viewOf(key, before, mode)
    const va = viewOf(key, after, mode)
    for (const d of defs) {
      const tb = new Set(safeTerms(d, key, vb))
      const ta = new Set(safeTerms(d, key, va))
      for (const t of tb) if (!ta.has(t)) ops.push({ type: 'del', key: indexKey(d.name, t, key) })
      for (const t of ta) {
        if (tb.has(t)) continue
        this.terms.addTerm(d.name, t) // before the write is issued, as for the key filter
        ops.push({ type: 'put', key: indexKey(d.name, t, key), value: EMPTY })
      }
    }
  }
}

const EMPTY = new Uint8Array(0)
const NO_KEYS: KeyIterator = { nextv: async () => [], close: async () => {} }

function safeTerms(d: IndexDefinition, key: string, e: Parameters<IndexDefinition['terms']>[1]): string[] {
  const ts = d.terms(key, e)
  for (const t of ts) {
    // A bad term would corrupt the index layout: this is a programming error of the index definition.
    invariant(typeof t === 'string' && !t.includes('\u0000'), `index ${d.name} produced an invalid term`)
  }
  return ts
}
