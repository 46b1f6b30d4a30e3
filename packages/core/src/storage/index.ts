import type { ShardDb, StorageFactory, StorageSupports } from '../api.js'
import { CausewayError } from '../errors.js'
import { customStorage } from './custom.js'
import { levelStorage } from './level.js'
import { memoryStorage } from './memory.js'
import type { SiteMeta, Storage } from './storage.js'

export type { SiteMeta, Storage } from './storage.js'

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
