import type { ShardDb, StorageFactory, StorageSupports } from '../api.js'
import { CausewayError } from '../errors.js'
import { customStorage } from './custom.js'
import { levelStorage } from './level.js'
import { memoryStorage } from './memory.js'

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

export type StorageOption = 'level' | 'memory' | StorageFactory

export function isStorageOption(x: unknown): x is StorageOption {
  return x === 'level' || x === 'memory' || typeof x === 'function'
}

/** The backend of an openSite `storage` option. */
export async function resolveStorage(option: StorageOption, siteId: string, dir: string | undefined): Promise<Storage> {
  if (option === 'level') return levelStorage(siteId, dir)
  if (option === 'memory') return memoryStorage()
  return customStorage(option, dir)
}

/**
 * Open every shard's database and check the guard: a site reopens its storage only with the same
 * id and shard count. On any failure, what was opened is closed again.
 */
export async function openStorage(storage: Storage, meta: SiteMeta): Promise<ShardDb[]> {
  const dir = storage.dir
  const dbs: ShardDb[] = []
  try {
    for (let i = 0; i < meta.shards; i++) {
      const db = storage.create(i)
      dbs.push(db)
      await db.open()
    }
  } catch (e) {
    await Promise.allSettled(dbs.map((d) => d.close()))
    const cause = e as { code?: string; cause?: { code?: string } }
    if (cause?.cause?.code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
      throw new CausewayError('LOCKED', `${dir} is already opened by another site`, { cause: e })
    }
    throw new CausewayError('STORAGE_ERROR', `cannot open the shards under ${dir}`, { cause: e })
  }
  try {
    const found = await storage.readMeta(dbs)
    if (found === undefined) await storage.writeMeta(dbs, meta)
    else if (found.id !== meta.id || found.shards !== meta.shards) {
      throw new CausewayError('INVALID_OPTIONS', `${dir ?? 'the storage'} holds site '${String(found.id)}' with ${String(found.shards)} shards; reopen it with the same id and shards`)
    }
  } catch (e) {
    await Promise.allSettled(dbs.map((d) => d.close()))
    if (e instanceof CausewayError) throw e
    throw new CausewayError('STORAGE_ERROR', `cannot read or write the site guard of ${dir ?? 'the storage'}`, { cause: e })
  }
  return dbs
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
