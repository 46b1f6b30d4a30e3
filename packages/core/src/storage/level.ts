import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ShardDb } from '../api.js'
import { formatMeta, parseMeta, type SiteMeta, type Storage } from './storage.js'

type LevelCtor = new (location: string, options: { keyEncoding: 'utf8'; valueEncoding: 'view' }) => unknown
let ClassicLevelCtor: LevelCtor | undefined

/** LevelDB (classic-level): one database per shard under `dir`, the guard in `dir/causeway.json`. */
export async function levelStorage(siteId: string, dirOption: string | undefined): Promise<Storage> {
  if (!ClassicLevelCtor) ClassicLevelCtor = (await import('classic-level')).ClassicLevel as unknown as LevelCtor
  const Ctor = ClassicLevelCtor
  const dir = dirOption ?? mkdtempSync(join(tmpdir(), `causeway-${siteId}-`))
  mkdirSync(dir, { recursive: true })
  const metaPath = join(dir, 'causeway.json')
  return {
    supports: { persistent: true, locking: true },
    dir,
    create: (index) => new Ctor(join(dir, `shard-${index}`), { keyEncoding: 'utf8', valueEncoding: 'view' }) as ShardDb,
    async readMeta(): Promise<SiteMeta | undefined> {
      if (!existsSync(metaPath)) return undefined
      return parseMeta(readFileSync(metaPath, 'utf8'), metaPath)
    },
    async writeMeta(_dbs, meta): Promise<void> {
      writeFileSync(metaPath, formatMeta(meta) + '\n')
    },
  }
}
