import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLevel } from 'memory-level'
import { openSite, type ShardDb, type Site } from 'causeway'
import { createSimNetwork, type SimNetwork } from '@causeway/sim'
import { eventually } from './helpers.js'

/**
 * Log trimming goes through the shard's queue (the shard owns its db): once every configured peer
 * holds a stream's entries, the origin drops them and records the trim floor and the clock's
 * high-water mark; replication and restarts carry on from there.
 */

let toClose: Array<Site | SimNetwork> = []
afterEach(async () => {
  for (const x of toClose.splice(0).reverse()) await x.close()
})

const logKeys = async (dbs: ShardDb[]): Promise<number> => {
  let n = 0
  for (const db of dbs) n += (await db.keys({ gte: 'l!', lt: 'l"' }).all()).length
  return n
}

describe('log trimming', () => {
  it('drops log entries every peer holds, keeps the rest working, and survives a reopen', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    toClose.push(net)
    const dbs: ShardDb[] = []
    // One shard: a persistent-looking custom storage whose dbs outlive the site (reopened below).
    const storage = Object.assign(
      (i: number) => {
        if (!dbs[i]) dbs[i] = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
        return dbs[i]!
      },
      { supports: { persistent: true } },
    )
    let a = await openSite({ id: 'a', shards: 1, heartbeatMs: 20, durability: 'relaxed', network: net.adapter('a'), storage })
    const b = await openSite({ id: 'b', storage: 'memory', heartbeatMs: 20, durability: 'relaxed', network: net.adapter('b') })
    toClose.push(b)
    const n = 1500
    const s = a.session()
    await Promise.all(Array.from({ length: n }, (_, i) => s.put(`k/${i}`, i)))
    await net.settle()
    expect(await logKeys(dbs)).toBe(n)
    // Trimmed once b acknowledged everything (every 5 heartbeats, at least 1024 entries at a time).
    const trimmed = async () => (await dbs[0]!.keys({ gte: 'm!gc!', lt: 'm!gc"' }).all()).length === 1 && (await logKeys(dbs)) < n - 1000
    await eventually(trimmed, 10_000, 'the log to be trimmed')
    const clock = await dbs[0]!.get('m!clock')
    expect(clock).toBeDefined()
    // Writes after the trim still replicate, and a reopened a resumes its stream above the floor.
    const v = await s.put('after', 'trim')
    await eventually(async () => (await b.session().get('after'))?.value === 'trim', 10_000, 'the write after the trim at b')
    await a.close()
    a = await openSite({ id: 'a', shards: 1, heartbeatMs: 20, durability: 'relaxed', network: net.adapter('a'), storage })
    toClose.push(a)
    const w = await a.session().put('reopened', 1)
    expect(w.time).toBeGreaterThan(v.time)
    await eventually(async () => (await b.session().get('reopened'))?.value === 1, 10_000, 'the write after reopen at b')
    expect((await b.session().get('k/7'))?.value).toBe(7)
  })

  it('a trim that fails half-way never costs a stream its position (the floor is stored before entries go)', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    toClose.push(net)
    const dbs: ShardDb[] = []
    let failMeta = false
    let failed = 0
    const storage = Object.assign(
      (i: number) => {
        if (!dbs[i]) {
          const db = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
          // Only the trim writes an array batch (shard batches are chained): fail it, like a full disk.
          const batch = db.batch.bind(db) as (...args: unknown[]) => unknown
          ;(db as { batch: unknown }).batch = (...args: unknown[]) => {
            if (args.length > 0 && failMeta) {
              failed++
              return Promise.reject(new Error('disk full'))
            }
            return batch(...args)
          }
          dbs[i] = db
        }
        return dbs[i]!
      },
      { supports: { persistent: true } },
    )
    let a = await openSite({ id: 'a', shards: 1, heartbeatMs: 20, durability: 'relaxed', network: net.adapter('a'), storage })
    const b = await openSite({ id: 'b', storage: 'memory', heartbeatMs: 20, durability: 'relaxed', network: net.adapter('b') })
    toClose.push(b)
    const n = 1100
    const s = a.session()
    await Promise.all(Array.from({ length: n }, (_, i) => s.put(`k/${i}`, i)))
    await net.settle()
    failMeta = true
    await eventually(() => failed > 0, 10_000, 'a trim attempt')
    await a.close()
    failMeta = false
    a = await openSite({ id: 'a', shards: 1, heartbeatMs: 20, durability: 'relaxed', network: net.adapter('a'), storage })
    toClose.push(a)
    // The reopened site must continue its stream above what b holds, or b drops the new write as a duplicate.
    await a.session().put('fresh', 1)
    await eventually(async () => (await b.session().get('fresh'))?.value === 1, 10_000, 'the write after reopen at b')
  })
})
