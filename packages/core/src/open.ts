import type { ShardDb } from './api.js'
import type { ValidOptions } from './options.js'
import { openStorage, resolveStorage } from './storage/index.js'

/**
 * Opening a site's storage: pick the backend of the `storage` option, open every shard's database
 * (LOCKED when another site holds them) and check the guard (same id, same shard count).
 * Recovery and joining the network follow in site.ts (createSite).
 */
export async function openShardDbs(o: ValidOptions): Promise<ShardDb[]> {
  const storage = await resolveStorage(o.storage, o.id, o.dir)
  return openStorage(storage, { id: o.id, shards: o.shards })
}
