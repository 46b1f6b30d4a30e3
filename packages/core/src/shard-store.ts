import type { ScanOptions, ShardDb } from './api.js'
import { decodeUntrusted } from './codec.js'
import type { StreamId } from './context.js'
import { invariant } from './errors.js'
import { AP, BOOTSTRAP_KEY, INDEX_RANGE, parseAnyIndexKey, CLOCK_KEY, GC, K, RM, indexRange, indexScanRange, keyOfState, keyOfTomb, L, LOG_RANGE_END, logKey, logPrefix, META_RANGE, parseIndexKey, seqOfLogKey, STATE_RANGE, stateKey, stateRange, streamOfLogKey, TOMB_RANGE } from './layout.js'

export { parseIndexKey }

/** A batched key iterator (what scans merge across shards). */
export interface KeyIterator {
  nextv(size: number): Promise<string[]>
  close(): Promise<void>
}

/** What recovery reads back from a shard's meta records. */
export interface ShardMeta {
  /** Lamport high-water mark stored when logs were trimmed. */
  clock: number
  /** Per stream: log trimmed up to here. */
  trimmed: Map<StreamId, number>
  /** Per stream: highest seq applied in this shard by a separate apply batch. */
  applied: Map<StreamId, number>
  /** Sites removed from the deployment (membership.ts). */
  removed: Set<string>
  /** Bootstrap mark (bootstrap.ts): 0 installing, 1 installed, undefined never bootstrapped. */
  bootstrap: number | undefined
}

/**
 * The read side of a shard's database, in the terms of the key layout: log ranges, recovery scans,
 * index and key scans. Base class of Shard, which adds the write queue; nothing else holds the db.
 */
export class ShardStore {
  constructor(protected readonly db: ShardDb) {}

  /** Log entries [from, to] of a stream, in seq order, at most `limit` (stops at a gap: trimmed). */
  async *logEntries(stream: StreamId, from: number, to: number, limit = Infinity): AsyncGenerator<{ seq: number; bytes: Uint8Array }> {
    const range = { gte: logKey(stream, from), lte: logKey(stream, to) }
    const it = this.db.iterator(Number.isFinite(limit) ? { ...range, limit } : range)
    try {
      for await (const [k, v] of it as AsyncIterable<[string, Uint8Array]>) yield { seq: seqOfLogKey(k), bytes: v }
    } finally {
      await it.close()
    }
  }

  /** The meta records recovery needs (trimmed and applied marks, the clock's high-water mark). */
  async readMeta(): Promise<ShardMeta> {
    const out: ShardMeta = { clock: 0, trimmed: new Map(), applied: new Map(), removed: new Set(), bootstrap: undefined }
    for await (const [k, v] of this.db.iterator(META_RANGE) as AsyncIterable<[string, Uint8Array]>) {
      const n = decodeUntrusted(v)
      invariant(typeof n === 'number', `corrupt meta record ${k}`)
      if (k === CLOCK_KEY) out.clock = Math.max(out.clock, n)
      else if (k.startsWith(GC)) out.trimmed.set(k.slice(GC.length), Math.max(out.trimmed.get(k.slice(GC.length)) ?? 0, n))
      else if (k.startsWith(AP)) out.applied.set(k.slice(AP.length), n)
      else if (k.startsWith(RM)) out.removed.add(k.slice(RM.length))
      else if (k === BOOTSTRAP_KEY) out.bootstrap = n
    }
    return out
  }

  /** Every stream logged here with the seq of its last log entry (its received prefix). */
  async logHeads(): Promise<Array<[StreamId, number]>> {
    const out: Array<[StreamId, number]> = []
    let from = L
    for (;;) {
      const first = await this.db.keys({ gt: from, lt: LOG_RANGE_END, limit: 1 }).all()
      if (first.length === 0) break
      const k = first[0] as string
      const sid = streamOfLogKey(k)
      const last = (await this.db.keys({ gte: logPrefix(sid), lt: logPrefix(sid) + '\uffff', reverse: true, limit: 1 }).all())[0] as string
      out.push([sid, seqOfLogKey(last)])
      from = logPrefix(sid) + '\uffff'
    }
    return out
  }

  /** Remove every record of an index (before a rebuild). */
  async clearIndex(name: string): Promise<void> {
    await this.db.clear(indexRange(name))
  }

  /** Keys (with or without a live value) starting with `prefix`, in order. */
  async *keysWithPrefix(prefix: string): AsyncGenerator<string> {
    for await (const k of this.db.keys(stateRange(prefix)) as AsyncIterable<string>) yield keyOfState(k)
  }

  /** Every key holding a state, `size` at a time, until `stop()` says so (the key filter's build). */
  async *stateKeyBatches(size: number, stop: () => boolean): AsyncGenerator<string[]> {
    for await (const ks of this.recordBatches(STATE_RANGE, size, stop)) yield ks.map(keyOfState)
  }

  /** Every index record's (name, term), `size` at a time, until `stop()` says so (the term filter's build). */
  async *indexTermBatches(size: number, stop: () => boolean): AsyncGenerator<Array<{ name: string; term: string }>> {
    for await (const ks of this.recordBatches(INDEX_RANGE, size, stop)) yield ks.map(parseAnyIndexKey)
  }

  private async *recordBatches(range: { gte: string; lt: string }, size: number, stop: () => boolean): AsyncGenerator<string[]> {
    const it = this.db.keys(range)
    try {
      while (!stop()) {
        const ks = (await it.nextv(size)) as string[]
        if (ks.length === 0) return
        yield ks
      }
    } finally {
      await it.close()
    }
  }

  /** Keys of live-or-dead states between two user-key bounds (scan.ts computes them), in either order. */
  keyIterator(bounds: { lo: string; loOpen: boolean; hi: string; hiOpen: boolean }, reverse: boolean): KeyIterator {
    const range: Record<string, string | boolean> = { reverse }
    range[bounds.loOpen ? 'gt' : 'gte'] = stateKey(bounds.lo)
    range[bounds.hiOpen ? 'lt' : 'lte'] = stateKey(bounds.hi)
    const it = this.db.keys(range)
    return { nextv: async (n) => ((await it.nextv(n)) as string[]).map(keyOfState), close: () => it.close() }
  }

  /** Batched iterator of an index's raw records (parse them with parseIndexKey). */
  indexIterator(name: string, options: ScanOptions, reverse: boolean, limit: number): KeyIterator {
    const range = indexScanRange(name, options)
    // No shard contributes more than `limit` keys, so each shard iterator stops there by itself.
    const perShard = Number.isFinite(limit) ? { ...range, reverse, limit } : { ...range, reverse }
    const it = this.db.keys(perShard)
    return { nextv: async (n) => (await it.nextv(n)) as string[], close: () => it.close() }
  }

  /** Up to `limit` keys with a stored state, in key order, strictly after `after` ('' = from the first). */
  async stateKeysAfter(after: string, limit: number): Promise<string[]> {
    const range = after === '' ? { gte: K } : { gt: stateKey(after) }
    return ((await this.db.keys({ ...range, lt: 'k"', limit }).all()) as string[]).map(keyOfState)
  }

  /** Does the shard hold any key state? */
  async hasStates(): Promise<boolean> {
    return (await this.stateKeysAfter('', 1)).length > 0
  }

  /** Keys marked as holding a tombstone, at most `limit`. */
  async tombstoneKeys(limit: number): Promise<string[]> {
    const keys: string[] = []
    for await (const k of this.db.keys({ ...TOMB_RANGE, limit }) as AsyncIterable<string>) keys.push(keyOfTomb(k))
    return keys
  }

  /** Close the database (idempotent). */
  async close(): Promise<void> {
    await this.db.close()
  }
}
