import type { ScanOptions } from './api.js'
import type { StreamId } from './context.js'

/**
 * Storage layout of one shard (string keys, binary values). Only the shard (and the storage
 * backends, for the site guard record) read or write these keys; everything else asks the shard.
 *
 *   k!<key>               key state (siblings)
 *   l!<stream>!<seq16>    replication log entry (encoded WriteEntry, exact origin bytes)
 *   (a stream's received prefix is the seq of its last log entry: entries are logged gaplessly)
 *   m!ap!<stream>         highest seq of <stream> applied in this shard by a separate apply batch
 *   m!gc!<stream>         log entries up to here were trimmed (every configured peer has them)
 *   m!rm!<site>           the site was removed from the deployment (membership)
 *   m!bs                  bootstrap: 0 installing, 1 installed (shard 0)
 *   m!clock               Lamport high-water mark, written when logs are trimmed (log entries carry the rest)
 *   i!<index>!<term>\0<key>   secondary index entry
 *   g!<key>               the key holds a tombstone (candidates for causal-stability collection)
 *   x!site                the site guard {id, shards, shard} (storage that keeps it in the db)
 */

/** One past the last key starting with `prefix`, for `lt` bounds (every prefix ends in '!'). */
const after = (prefix: string): string => prefix.slice(0, -1) + '"'

// ---------------------------------------------------------------- key states
export const K = 'k!'
export const stateKey = (key: string): string => K + key
export const keyOfState = (k: string): string => k.slice(K.length)
/** Range of every state record (astral keys sort after '\uffff' in UTF-8, so bound on the prefix). */
export const STATE_RANGE = { gte: K, lt: after(K) }
/** Range of the state records of every key starting with `prefix`. */
export const stateRange = (prefix: string): { gte: string; lt: string } => ({ gte: K + prefix, lt: K + prefix + '\uffff' })

// ---------------------------------------------------------------- tombstone marks
/** Marker: the key's state holds at least one tombstone. */
export const G = 'g!'
export const tombKey = (key: string): string => G + key
export const keyOfTomb = (k: string): string => k.slice(G.length)
export const TOMB_RANGE = { gte: G, lt: after(G) }

// ---------------------------------------------------------------- replication log
export const L = 'l!'
export const seqKey = (seq: number): string => String(seq).padStart(16, '0')
export const logKey = (stream: StreamId, seq: number): string => `${L}${stream}!${seqKey(seq)}`
export const logPrefix = (stream: StreamId): string => `${L}${stream}!`
export const LOG_RANGE_END = after(L)
/** The seq of a log key. */
export const seqOfLogKey = (k: string): number => Number(k.slice(k.lastIndexOf('!') + 1))
/** The stream of a log key. */
export const streamOfLogKey = (k: string): StreamId => k.slice(L.length, k.lastIndexOf('!'))

// ---------------------------------------------------------------- meta records
export const M = 'm!'
export const META_RANGE = { gte: M, lt: after(M) }
export const CLOCK_KEY = 'm!clock'
export const AP = 'm!ap!'
export const GC = 'm!gc!'
export const appliedKey = (stream: StreamId): string => AP + stream
export const trimmedKey = (stream: StreamId): string => GC + stream
/** m!rm!<site>: the site was removed from the deployment (membership.ts); value 1. */
export const RM = 'm!rm!'
export const removedKey = (site: string): string => RM + site
/** m!bs: 0 while a bootstrap is being installed, 1 once installed (bootstrap.ts; shard 0 only). */
export const BOOTSTRAP_KEY = 'm!bs'
/** Every key-state, tombstone-mark and index record (a bootstrap cut short starts over from empty). */
export const DATA_RANGES = [{ gte: K, lt: after(K) }, TOMB_RANGE, { gte: 'i!', lt: 'i"' }]

// ---------------------------------------------------------------- secondary indexes
export const indexBase = (name: string): string => `i!${name}!`
export function indexKey(name: string, term: string, key: string): string {
  return `i!${name}!${term}\u0000${key}`
}
/** Range of every index record. */
export const INDEX_RANGE = { gte: 'i!', lt: 'i"' }
/** The index name and term of any index record (names never contain '!', terms never '\0'). */
export function parseAnyIndexKey(k: string): { name: string; term: string } {
  const bang = k.indexOf('!', 2)
  return { name: k.slice(2, bang), term: k.slice(bang + 1, k.indexOf('\u0000', bang + 1)) }
}
export const indexRange = (name: string): { gte: string; lt: string } => ({ gte: indexBase(name), lt: `i!${name}"` })

/** The storage range of an index scan (bounds on terms). */
export function indexScanRange(name: string, options: ScanOptions): Record<string, string> {
  const base = indexBase(name)
  const range: Record<string, string> = {}
  if (options.gte !== undefined) range.gte = base + options.gte
  else if (options.gt !== undefined) range.gte = base + options.gt + '\u0001'
  else range.gte = base
  if (options.lt !== undefined) range.lt = base + options.lt
  else if (options.lte !== undefined) range.lt = base + options.lte + '\u0001'
  else range.lt = `i!${name}"`
  return range
}

/** The (term, key) of an index record. */
export function parseIndexKey(name: string, k: string): { term: string; key: string } {
  const rest = k.slice(indexBase(name).length)
  const z = rest.indexOf('\u0000')
  return { term: rest.slice(0, z), key: rest.slice(z + 1) }
}

// ---------------------------------------------------------------- site guard
export const SITE_GUARD_KEY = 'x!site'
