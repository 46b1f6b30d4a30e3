import type { ShardDb, StorageFactory, StorageSupports } from '../api.js'
import { SITE_GUARD_KEY } from '../layout.js'
import { formatMeta, parseMeta, type SiteMeta, type Storage } from './storage.js'

/**
 * A user factory `(shardIndex, dir) => db`. Its manifest is the factory's own `supports`, else
 * what its databases say of themselves (abstract-level's `db.supports.permanence`). A persistent
 * one keeps the site guard as a record in every shard's database (there may be no directory).
 */
export async function customStorage(factory: StorageFactory, dir: string | undefined): Promise<Storage> {
  let supports: StorageSupports | undefined
  const manifest = (db: ShardDb): StorageSupports => {
    if (!supports) {
      const own = (db as { supports?: { permanence?: unknown } }).supports
      supports = {
        persistent: factory.supports?.persistent ?? (typeof own?.permanence === 'boolean' ? own.permanence : true),
        locking: factory.supports?.locking ?? false,
      }
    }
    return supports
  }
  const enc = new TextEncoder()
  const dec = new TextDecoder()
  return {
    get supports(): StorageSupports {
      return supports ?? { persistent: factory.supports?.persistent ?? true, locking: factory.supports?.locking ?? false }
    },
    dir,
    create: (index) => {
      const db = factory(index, dir)
      manifest(db)
      return db
    },
    async readMeta(dbs): Promise<SiteMeta | undefined> {
      if (dbs.length === 0 || !manifest(dbs[0]!).persistent) return undefined
      const v = await dbs[0]!.get(SITE_GUARD_KEY)
      if (v === undefined) return undefined
      return parseMeta(dec.decode(v), `the site guard record of shard 0`)
    },
    async writeMeta(dbs, meta): Promise<void> {
      if (dbs.length === 0 || !manifest(dbs[0]!).persistent) return
      const bytes = enc.encode(formatMeta(meta))
      await Promise.all(dbs.map((db) => db.put(SITE_GUARD_KEY, bytes)))
    },
  }
}
