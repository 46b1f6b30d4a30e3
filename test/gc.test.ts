import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLevel } from 'memory-level'
import { openSite, type ShardDb, type Site } from 'causeway'
import { createSimNetwork, type SimNetwork } from '@causeway/sim'
import { eventually } from './helpers.js'

let toClose: Array<Site | SimNetwork> = []
afterEach(async () => {
  for (const x of toClose.splice(0).reverse()) await x.close()
})

/** Sites on memory-level whose databases the test can inspect. */
async function setup(ids: string[]) {
  const net = createSimNetwork({ latencyMs: 2 })
  toClose.push(net)
  const dbs: Record<string, ShardDb[]> = {}
  const sites: Record<string, Site> = {}
  for (const id of ids) {
    dbs[id] = []
    sites[id] = await openSite({
      id,
      shards: 2,
      heartbeatMs: 20,
      network: net.adapter(id),
      storage: () => {
        const db = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
        dbs[id]!.push(db)
        return db
      },
    })
    toClose.push(sites[id]!)
  }
  const stored = async (id: string, key: string) => {
    for (const db of dbs[id]!) if ((await db.get('k!' + key)) !== undefined) return true
    return false
  }
  return { net, sites, stored }
}

describe('tombstone collection (causal stability)', () => {
  it('reclaims a tombstone once every site has it, never before', async () => {
    const { net, sites, stored } = await setup(['a', 'b', 'c'])
    await sites.a!.session().put('doomed', 'x')
    await net.settle()
    net.partition(['a', 'b'], ['c'])
    await sites.a!.session().delete('doomed')
    await net.settle()
    // c has not applied the delete: a and b must keep the tombstone, however often they collect.
    await new Promise((r) => setTimeout(r, 150))
    for (const id of ['a', 'b']) {
      await sites[id]!.gc()
      expect(await stored(id, 'doomed')).toBe(true)
      expect(await sites[id]!.session().get('doomed')).toBeUndefined()
    }
    expect((await sites.c!.session().get('doomed'))!.value).toBe('x')
    net.heal()
    await net.settle()
    // Once every site has applied it and reported so, each site drops the key entirely.
    await eventually(async () => {
      for (const id of ['a', 'b', 'c']) await sites[id]!.gc()
      for (const id of ['a', 'b', 'c']) if (await stored(id, 'doomed')) return false
      return true
    }, 10_000, 'tombstones collected everywhere')
    for (const id of ['a', 'b', 'c']) expect(await sites[id]!.session().get('doomed')).toBeUndefined()
    // The key is usable again afterwards.
    await sites.c!.session().put('doomed', 'reborn')
    await net.settle()
    expect((await sites.a!.session().get('doomed'))!.value).toBe('reborn')
  })

  it('a write concurrent with a delete is never overtaken by collection', async () => {
    const { net, sites, stored } = await setup(['a', 'b'])
    await sites.a!.session().put('k', 1)
    await net.settle()
    net.partition(['a'], ['b'])
    await sites.a!.session().delete('k')
    await new Promise((r) => setTimeout(r, 100))
    await sites.a!.gc()
    expect(await stored('a', 'k')).toBe(true) // b has not seen the delete: not stable
    const v = await sites.b!.session().put('k', 2)
    net.heal()
    await net.settle()
    const results = await Promise.all(['a', 'b'].map((id) => sites[id]!.session().get('k')))
    expect(results[0]).toEqual(results[1]) // converged whichever version won
    if (results[0]) expect(results[0].version).toEqual(v)
  })
})
