import type { ShardDb, StorageSupports } from '../api.js'
import { CausewayError } from '../errors.js'

/** What a site's storage is guarded by: it holds this site, with this many shards. */
export interface SiteMeta {
  id: string
  shards: number
}

/**
 * A storage backend: opens the shards' databases and keeps the site guard (id and shard count),
 * wherever the backend keeps it (a meta file, a record in the databases, nowhere when nothing
 * persists).
 */
export interface Storage {
  readonly supports: StorageSupports
  /** The site's directory, if the backend has one. */
  readonly dir: string | undefined
  /** The (unopened) database of shard `index`. */
  create(index: number): ShardDb
  /** The guard written when the storage was first used; undefined when none. Throws STORAGE_ERROR when unreadable. */
  readMeta(dbs: readonly ShardDb[]): Promise<SiteMeta | undefined>
  writeMeta(dbs: readonly ShardDb[], meta: SiteMeta): Promise<void>
}

/** Parse a stored guard; throws STORAGE_ERROR naming `where` when corrupt. */
export function parseMeta(text: string, where: string): SiteMeta {
  try {
    const m = JSON.parse(text) as { id?: unknown; shards?: unknown }
    return { id: m.id as string, shards: m.shards as number }
  } catch (e) {
    throw new CausewayError('STORAGE_ERROR', `${where} is corrupt`, { cause: e })
  }
}

export function formatMeta(meta: SiteMeta): string {
  return JSON.stringify({ format: 1, id: meta.id, shards: meta.shards })
}
