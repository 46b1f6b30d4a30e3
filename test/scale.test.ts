import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLevel } from 'memory-level'
import { decodeFrame, openSite, overlayNeighbours, type NetworkAdapter, type ShardDb, type Site } from 'causeway'
import { createSimNetwork, type SimNetwork } from '@causeway/sim'
import { eventually } from './helpers.js'

let toClose: Array<Site | SimNetwork> = []
afterEach(async () => {
  for (const x of toClose.splice(0).reverse()) await x.close().catch(() => {})
})

/** Sites on a sim network, optionally on a bounded-degree overlay, with inspectable storage and frame counters. */
async function deployment(ids: string[], opts: { degree?: number; heartbeatMs?: number; latencyMs?: number } = {}) {
  const net = createSimNetwork({ latencyMs: opts.latencyMs ?? 1 })
  toClose.push(net)
  const dbs: Record<string, ShardDb[]> = {}
  const sites: Record<string, Site> = {}
  const entriesTo: Record<string, number> = {}
  const idle = { frames: 0, bytes: 0, counting: false }
  const counted = (id: string, inner: NetworkAdapter): NetworkAdapter => ({
    start: (s, h) => inner.start(s, h),
    peers: () => inner.peers(),
    connected: (p) => inner.connected(p),
    stop: () => inner.stop(),
    disconnect: (p) => inner.disconnect?.(p),
    send(peer, bytes) {
      const f = decodeFrame(bytes)
      if (f.t === 'writes') entriesTo[peer] = (entriesTo[peer] ?? 0) + f.e.length
      if (idle.counting) {
        idle.frames++
        idle.bytes += bytes.length
      }
      return inner.send(peer, bytes)
    },
  })
  for (const id of ids) {
    dbs[id] = []
    const peers = opts.degree ? [...overlayNeighbours(id, ids, opts.degree)].map((site) => ({ site })) : undefined
    sites[id] = await openSite({
      id,
      shards: 1,
      heartbeatMs: opts.heartbeatMs ?? 20,
      network: counted(id, net.adapter(id, peers ? { peers } : undefined)),
      storage: () => {
        const db = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
        dbs[id]!.push(db)
        return db
      },
    })
    toClose.push(sites[id]!)
  }
  const count = async (id: string, prefix: string) => {
    let n = 0
    for (const db of dbs[id]!) for await (const _ of db.keys({ gte: prefix, lt: prefix + '\uffff' })) n++
    return n
  }
  return { net, sites, entriesTo, idle, count }
}

describe('metadata that does not grow with the deployment (#10)', () => {
  it('an idle beat costs the same few bytes on a link whatever the number of sites', async () => {
    const perFrame: number[] = []
    for (const n of [4, 24]) {
      const ids = Array.from({ length: n }, (_, i) => `s${i}`)
      const d = await deployment(ids, { degree: 4 })
      for (const id of ids) await d.sites[id]!.session().put(`k/${id}`, id)
      await d.net.settle()
      await new Promise((r) => setTimeout(r, 800)) // beats carry the last changes along the tree
      d.idle.counting = true
      await new Promise((r) => setTimeout(r, 300))
      d.idle.counting = false
      expect(d.idle.frames).toBeGreaterThan(n) // beats did flow
      perFrame.push(d.idle.bytes / d.idle.frames)
      for (const x of toClose.splice(0).reverse()) await x.close()
    }
    // A handful of bytes per idle beat, and no more at 24 sites than at 4.
    expect(perFrame[0]).toBeLessThanOrEqual(32)
    expect(perFrame[1]).toBeLessThanOrEqual(perFrame[0]! + 4)
  })

  it('a fresh mesh sends each write about once to each receiver (hello alone stops the relay flood)', async () => {
    const ids = ['a', 'b', 'c', 'd']
    const d = await deployment(ids, { heartbeatMs: 1000, latencyMs: 5 })
    await Promise.all(ids.map(async (id) => { for (let i = 0; i < 25; i++) await d.sites[id]!.session().put(`${id}/${i}`, i) }))
    await d.net.settle()
    for (const id of ids) expect(d.entriesTo[id] ?? 0).toBeLessThanOrEqual(Math.ceil(3 * 25 * 1.2))
    for (const id of ids) expect(d.entriesTo[id] ?? 0).toBeGreaterThanOrEqual(3 * 25)
  })

  it('on a 32-site overlay of degree 4, every write reaches every site, tombstones are collected and logs trimmed', async () => {
    const ids = Array.from({ length: 32 }, (_, i) => `site${i}`)
    const d = await deployment(ids, { degree: 4 })
    const s0 = d.sites.site0!.session()
    await s0.put('doomed', 'x')
    // The first burst from an origin reaches a site once per neighbour; the duplicates prune those paths.
    for (let i = 0; i < 20; i++) await s0.put(`bulk/${i % 50}`, i)
    await d.net.settle()
    for (const k of Object.keys(d.entriesTo)) delete d.entriesTo[k]
    for (let i = 20; i < 1100; i++) await s0.put(`bulk/${i % 50}`, i) // > TRIM_MIN_ENTRIES in one stream
    await d.net.settle()
    // Relays pruned duplicate paths (Plumtree-style): about one copy of each write per site, not one per neighbour.
    const delivered = Object.values(d.entriesTo).reduce((a, b) => a + b, 0)
    expect(delivered / (1080 * 31)).toBeLessThanOrEqual(1.3)
    await d.sites.site17!.session().put('from17', 17)
    await s0.delete('doomed')
    await d.net.settle()
    for (const id of ids) {
      expect((await d.sites[id]!.session().get('from17'))?.value).toBe(17)
      expect((await d.sites[id]!.session().get('bulk/49'))?.value).toBe(1099)
      expect(await d.sites[id]!.session().get('doomed')).toBeUndefined()
    }
    // The tombstone goes everywhere once stable, and relays trim what their neighbours hold.
    await eventually(async () => {
      for (const id of ids) if ((await d.count(id, 'g!')) > 0 || (await d.count(id, 'k!doomed')) > 0) return false
      return true
    }, 30_000, 'tombstones collected at every site')
    await eventually(async () => (await d.count('site0', 'l!')) < 1100, 30_000, 'site0 trims its log')
  })
})

describe('the sim default mesh as a bounded-degree overlay', () => {
  it('createSimNetwork({ degree: 4 }): each site links to a few others, every write reaches every site by relay', async () => {
    const net = createSimNetwork({ latencyMs: 1, degree: 4 })
    toClose.push(net)
    const ids = Array.from({ length: 14 }, (_, i) => `o${i}`)
    const sites: Site[] = []
    for (const id of ids) {
      const s = await openSite({ id, storage: 'memory', shards: 1, heartbeatMs: 20, network: net.adapter(id) })
      sites.push(s)
      toClose.push(s)
    }
    for (const s of sites) {
      const n = s.status().peers.length
      expect(n).toBeGreaterThanOrEqual(2)
      expect(n).toBeLessThanOrEqual(8)
    }
    expect(sites.map((s) => s.status().peers.length).reduce((a, b) => a + b, 0)).toBeLessThan(14 * 13)
    await Promise.all(sites.map((s, i) => s.session().put(`w/${i}`, i)))
    await net.settle()
    const keys = ids.map((_, i) => `w/${i}`)
    for (const s of sites) expect((await s.session().getMany(keys)).size).toBe(14)
  })
})
