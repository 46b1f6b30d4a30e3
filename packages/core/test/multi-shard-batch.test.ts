import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { createSite } from '../src/site.js'
import type { ShardDb, Site, StorageFactory } from '../src/api.js'
import { shardOf } from '../src/streams.js'

/**
 * A multi-shard local write stages its coordinator shard's ops in the log entry's own batch: one
 * storage batch per shard, nothing visible until every shard committed, and a crash after the log
 * batch is redone on open.
 */
const dirs: string[] = []
const sites: Site[] = []
afterEach(async () => {
  for (const s of sites.splice(0)) await s.close().catch(() => {})
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

let batches = 0
/** While set, batch writes of this shard wait for it (a slow or dying shard). */
const gates = new Map<number, Promise<void>>()
const failing = new Set<number>()
function factory(): StorageFactory {
  return Object.assign(
    (i: number, dir: string | undefined) => {
      const db = new ClassicLevel<string, Uint8Array>(join(dir!, `m-${i}`), { keyEncoding: 'utf8', valueEncoding: 'view' })
      const batch = db.batch.bind(db) as (...a: unknown[]) => unknown
      ;(db as unknown as { batch: (...a: unknown[]) => unknown }).batch = (...a: unknown[]) => {
        const b = batch(...a)
        if (a.length > 0) return b
        const chained = b as { write: (o?: unknown) => Promise<void> }
        const write = chained.write.bind(chained)
        chained.write = async (o?: unknown) => {
          batches++
          await gates.get(i)
          if (failing.has(i)) throw new Error(`shard ${i} is gone`)
          return write(o)
        }
        return chained
      }
      return db as unknown as ShardDb
    },
    { supports: { locking: true } },
  )
}
const keysOn = (shard: number, n: number): string[] => {
  const out: string[] = []
  for (let i = 0; out.length < n; i++) if (shardOf(`key/${i}`, 2) === shard) out.push(`key/${i}`)
  return out
}

describe('multi-shard local writes', () => {
  it('cost one storage batch per shard, and stay invisible until every shard committed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-ms-'))
    dirs.push(dir)
    const site = await createSite({ id: 'paris', dir, storage: factory(), shards: 2 })
    sites.push(site)
    await site.idle()
    const [a] = keysOn(0, 1)
    const [b] = keysOn(1, 1)
    const before = batches
    await site.session().write([{ key: a!, value: 1 }, { key: b!, value: 2 }])
    expect(batches - before).toBe(2) // the log batch (with shard 0's part) and shard 1's apply batch
    // Hold shard 1: the write's part on shard 0 is on disk but must not be visible yet.
    let open!: () => void
    gates.set(1, new Promise<void>((r) => (open = r)))
    const w = site.session().write([{ key: a!, value: 10 }, { key: b!, value: 20 }])
    for (let i = 0; i < 20 && batches - before < 3; i++) await new Promise((r) => setTimeout(r, 5))
    expect((await site.session().get(a!))?.value).toBe(1)
    gates.delete(1)
    open()
    await w
    const got = await site.session().getMany([a!, b!])
    expect([got.get(a!)?.value, got.get(b!)?.value]).toEqual([10, 20])
  })

  it('a crash after the log batch is redone on open (both shards end up with the write)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-ms-'))
    dirs.push(dir)
    let site = await createSite({ id: 'paris', dir, storage: factory(), shards: 2 })
    const [a] = keysOn(0, 1)
    const [b] = keysOn(1, 1)
    await site.idle()
    failing.add(1) // shard 1 dies: the write is logged (and staged at shard 0), never applied at 1
    const w = site.session().write([{ key: a!, value: 'x' }, { key: b!, value: 'y' }])
    await expect(w).rejects.toMatchObject({ code: 'STORAGE_ERROR' })
    await site.close()
    failing.clear()
    site = await createSite({ id: 'paris', dir, storage: factory(), shards: 2 })
    sites.push(site)
    const got = await site.session().getMany([a!, b!])
    expect([got.get(a!)?.value, got.get(b!)?.value]).toEqual(['x', 'y'])
  })
})
