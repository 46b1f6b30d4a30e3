import type { OpenSiteOptions, Site } from '@causeway/core'
import { createSite } from '@causeway/core'

export * from '@causeway/core'

/**
 * Open a Causeway site: the documented entry point (shared/API.md). Validates the options
 * (INVALID_OPTIONS), opens the storage (LOCKED when another site holds it; INVALID_OPTIONS when it
 * holds another site id or shard count), recovers what was logged, then joins the network.
 *
 * Defaults, when an option is omitted:
 * - `storage`: `'level'` — LevelDB (classic-level), one database per shard under `dir`, with the
 *   guard `dir/causeway.json`; `'memory'` (memory-level) for tests; or a factory
 *   `(shardIndex, dir) => db` returning an abstract-level db opened with
 *   `{ keyEncoding: 'utf8', valueEncoding: 'view' }` (its `supports` manifest refines the checks)
 * - `dir`: a fresh temporary directory (LevelDB storage)
 * - `shards`: 4 (1..64)
 * - `durability`: `'fsync'` (a write resolves once it is on disk)
 * - `conflicts`: `'lww'` (last writer wins)
 * - `maxValueBytes`: 1 MiB; `cacheEntries`: 100 000 key states per shard
 * - `network`: none (a standalone site); `heartbeatMs`: 1000 when there is one
 * - `clock`: the system clock; `logger`: silent; `ttl`: none
 */
export function openSite(options: OpenSiteOptions): Promise<Site> {
  // The facade picks the storage default (core's createSite has the same one, for direct users).
  if (typeof options === 'object' && options !== null && options.storage === undefined) return createSite({ ...options, storage: 'level' })
  return createSite(options)
}
