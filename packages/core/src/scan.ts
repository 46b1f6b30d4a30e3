import type { IndexDefinition, ScanKeysOptions, ScanOptions } from './api.js'
import type { KeyState } from './conflict.js'
import { CausewayError } from './errors.js'
import { INDEX_NAME_RE } from './ids.js'
import { REINDEX_BATCH_KEYS, SCAN_BATCH, SCAN_FIRST_BATCH, SCAN_LIVE_CHUNK } from './limits.js'
import { parseIndexKey, type KeyIterator, type Shard } from './shard.js'

/** What scans need from their site. */
export interface ScanHost {
  checkOpen(): void
  /** A causally consistent snapshot of committed states. */
  readStates(keys: string[]): Promise<Map<string, KeyState>>
}

/** Secondary indexes (registry, rebuilds, scans) and key scans, merged across shards. */
export class Scans {
  private readonly indexes = new Map<string, IndexDefinition>()

  constructor(
    private readonly host: ScanHost,
    private readonly shards: readonly Shard[],
  ) {}

  /** The indexes covering a key (the shards maintain them with every change). */
  indexesFor(key: string): IndexDefinition[] {
    if (this.indexes.size === 0) return []
    const out: IndexDefinition[] = []
    for (const d of this.indexes.values()) if (key.startsWith(d.prefix)) out.push(d)
    return out
  }

  async ensureIndex(def: IndexDefinition): Promise<void> {
    this.host.checkOpen()
    if (typeof def !== 'object' || def === null || typeof def.name !== 'string' || !INDEX_NAME_RE.test(def.name)) {
      throw new CausewayError('INVALID_ARGUMENT', `index name must match ${INDEX_NAME_RE}`)
    }
    if (typeof def.prefix !== 'string' || typeof def.terms !== 'function' || typeof def.fingerprint !== 'string') {
      throw new CausewayError('INVALID_ARGUMENT', 'index needs prefix, fingerprint and terms()')
    }
    const existing = this.indexes.get(def.name)
    if (existing && existing.fingerprint === def.fingerprint && existing.prefix === def.prefix) {
      this.indexes.set(def.name, def)
      return
    }
    // Register first so concurrent writes maintain it, then rebuild from the current states.
    this.indexes.set(def.name, def)
    for (const sh of this.shards) {
      await sh.clearIndex(def.name)
      const keys: string[] = []
      const flush = async (): Promise<void> => {
        if (keys.length === 0) return
        const batch = keys.splice(0)
        await new Promise<void>((resolve, reject) => sh.enqueue({ kind: 'reindex', index: def, keys: batch, resolve, reject }))
      }
      for await (const k of sh.keysWithPrefix(def.prefix)) {
        keys.push(k)
        if (keys.length >= REINDEX_BATCH_KEYS) await flush()
      }
      await flush()
    }
  }

  scanIndex(name: string, options: ScanOptions = {}): AsyncIterable<{ term: string; key: string }> {
    this.host.checkOpen()
    if (!this.indexes.has(name)) throw new CausewayError('INVALID_ARGUMENT', `no index named '${name}' (call ensureIndex first)`)
    const limit = options.limit ?? Infinity
    const reverse = options.reverse === true
    const shards = this.shards
    return {
      [Symbol.asyncIterator]: () =>
        mergeShards(shards.map((sh) => sh.indexIterator(name, options, reverse, limit)), reverse, limit, (k) => parseIndexKey(name, k)),
    }
  }

  scanKeys(prefix: string, options: ScanKeysOptions = {}): AsyncIterable<string> {
    this.host.checkOpen()
    if (typeof prefix !== 'string') throw new CausewayError('INVALID_ARGUMENT', 'prefix must be a string')
    const limit = options.limit ?? Infinity
    const reverse = options.reverse === true
    const bounds = scanBounds(prefix, options)
    const self = this
    return {
      async *[Symbol.asyncIterator]() {
        let n = 0
        const it = mergeShards(
          self.shards.map((sh) => sh.keyIterator(bounds, reverse)),
          reverse,
          Infinity,
          (k) => k,
          // Most keys are live: a first batch of `limit` per shard usually suffices (nextv costs by size).
          Math.max(1, Math.min(SCAN_FIRST_BATCH, limit)),
        )
        // Only keys with a live value at this site, judged on the committed state, a chunk at a time
        // (one storage round trip per chunk, not per key).
        let chunk: string[] = []
        const live = async function* (): AsyncGenerator<string> {
          const states = await self.host.readStates(chunk)
          for (const key of chunk) {
            if (n >= limit) return
            if (states.get(key)!.some((s) => s.value !== undefined)) {
              n++
              yield key
            }
          }
        }
        for await (const key of it) {
          chunk.push(key)
          if (chunk.length >= Math.min(SCAN_LIVE_CHUNK, limit - n)) {
            yield* live()
            chunk = []
            if (n >= limit) return
          }
        }
        if (chunk.length > 0) yield* live()
      },
    }
  }
}

/**
 * The user-key range of scanKeys: the prefix's range narrowed by every bound given (the tightest
 * lower and upper bound win; an empty range stays empty because LevelDB yields nothing for it).
 */
function scanBounds(prefix: string, o: ScanKeysOptions): { lo: string; loOpen: boolean; hi: string; hiOpen: boolean } {
  let lo = { key: prefix, open: false }
  let hi = { key: prefix + '\uffff', open: true }
  const lower = (key: string | undefined, open: boolean): void => {
    if (key === undefined) return
    const c = cmpUtf8(key, lo.key)
    if (c > 0 || (c === 0 && open)) lo = { key, open }
  }
  const upper = (key: string | undefined, open: boolean): void => {
    if (key === undefined) return
    const c = cmpUtf8(key, hi.key)
    if (c < 0 || (c === 0 && open)) hi = { key, open }
  }
  lower(o.after, true)
  lower(o.gt, true)
  lower(o.gte, false)
  upper(o.lt, true)
  upper(o.lte, false)
  return { lo: lo.key, loOpen: lo.open, hi: hi.key, hiOpen: hi.open }
}

/**
 * Merge per-shard sorted key iterators into one sorted stream (UTF-8 byte order, as LevelDB sorts).
 * Keys are pulled in batches (nextv): one storage round-trip per shard for a small range, where
 * next() costs two (the key, then the end) — a scan touches every shard, so this is per lookup.
 */
async function* mergeShards<T>(
  its: KeyIterator[],
  reverse: boolean,
  limit: number,
  map: (k: string) => T,
  firstBatch = SCAN_FIRST_BATCH,
): AsyncGenerator<T> {
  const bufs: string[][] = its.map(() => [])
  const pos: number[] = its.map(() => 0)
  const ended: boolean[] = its.map(() => false)
  // Refill shard i's buffer when it is used up; an empty batch marks the end of that shard.
  const fill = async (i: number, size: number): Promise<void> => {
    const got = await its[i]!.nextv(Math.max(1, Math.min(size, limit)))
    bufs[i] = got
    pos[i] = 0
    if (got.length === 0) ended[i] = true
  }
  let n = 0
  try {
    if (limit > 0) await Promise.all(its.map((_, i) => fill(i, firstBatch)))
    while (n < limit) {
      let best = -1
      let bestKey = ''
      for (let i = 0; i < its.length; i++) {
        if (ended[i]) continue
        const h = bufs[i]![pos[i]!]!
        if (best === -1) {
          best = i
          bestKey = h
        } else {
          const c = cmpUtf8(h, bestKey)
          if (reverse ? c > 0 : c < 0) {
            best = i
            bestKey = h
          }
        }
      }
      if (best === -1) break
      if (++pos[best]! >= bufs[best]!.length) await fill(best, SCAN_BATCH)
      n++
      yield map(bestKey)
    }
  } finally {
    await Promise.allSettled(its.map((it) => it.close()))
  }
}

/** Compare strings by code point (= UTF-8 byte order, LevelDB's order), not by UTF-16 unit. */
export function cmpUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs === ys) return x < y ? -1 : 1
    return xs ? 1 : -1 // a surrogate (astral code point) sorts after any BMP unit
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}
