import type { ShardDb } from '../api.js'
import type { Storage } from './storage.js'

type LevelCtor = new (options: { keyEncoding: 'utf8'; valueEncoding: 'view' }) => unknown
let MemoryLevelCtor: LevelCtor | undefined

/** memory-level: nothing persists, so there is nothing to guard or lock. */
export async function memoryStorage(): Promise<Storage> {
  if (!MemoryLevelCtor) MemoryLevelCtor = (await import('memory-level')).MemoryLevel as unknown as LevelCtor
  const Ctor = MemoryLevelCtor
  return {
    supports: { persistent: false, locking: false },
    dir: undefined,
    create: () => new Ctor({ keyEncoding: 'utf8', valueEncoding: 'view' }) as ShardDb,
    readMeta: async () => undefined,
    writeMeta: async () => {},
  }
}
