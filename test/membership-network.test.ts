/**
 * Run-time membership of the networks (#11): addPeer/removePeer on the sim and on libp2p, and the
 * engine picking up peers() changes (replication, trimming, status).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openSite, type Site } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import { libp2pNetwork, type Libp2pNetwork } from '@causeway/libp2p'
import { eventually } from './helpers.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

describe('sim network membership', () => {
  it('a site opened later joins the default mesh and gets everything', async () => {
    const net = createSimNetwork({})
    cleanups.push(() => net.close())
    const a = await openSite({ id: 'a', storage: 'memory', heartbeatMs: 50, network: net.adapter('a') })
    cleanups.push(() => a.close())
    await a.session().put('k', 1)
    const b = await openSite({ id: 'b', storage: 'memory', heartbeatMs: 50, network: net.adapter('b') })
    cleanups.push(() => b.close())
    await eventually(async () => (await b.session().get('k'))?.value === 1, 10_000, 'b gets k')
    expect(a.status().peers.map((p) => p.id)).toEqual(['b'])
  })

  it('addPeer connects allow-listed sites at run time; removePeer disconnects and drops the peer from status', async () => {
    const net = createSimNetwork({})
    cleanups.push(() => net.close())
    const na = net.adapter('a', { peers: [{ site: 'b' }] })
    const nb = net.adapter('b', { peers: [{ site: 'a' }] })
    const a = await openSite({ id: 'a', storage: 'memory', heartbeatMs: 50, network: na })
    const b = await openSite({ id: 'b', storage: 'memory', heartbeatMs: 50, network: nb })
    cleanups.push(() => a.close(), () => b.close())
    await a.session().put('x', 'from-a')
    const nc = net.adapter('c', { peers: [] })
    const c = await openSite({ id: 'c', storage: 'memory', heartbeatMs: 50, network: nc })
    cleanups.push(() => c.close())
    expect(net.connected('a', 'c')).toBe(false)
    nc.addPeer({ site: 'a' })
    na.addPeer({ site: 'c' })
    await eventually(async () => (await c.session().get('x'))?.value === 'from-a', 10_000, 'c gets x')
    expect(a.status().peers.map((p) => p.id).sort()).toEqual(['b', 'c'])
    // c's writes reach b through a (a relays).
    await c.session().put('y', 'from-c')
    await eventually(async () => (await b.session().get('y'))?.value === 'from-c', 10_000, 'b gets y')
    na.removePeer('c')
    await eventually(() => !net.connected('a', 'c'), 5_000, 'a-c down')
    expect(a.status().peers.map((p) => p.id)).toEqual(['b'])
    expect(na.peers().map((p) => p.site)).toEqual(['b'])
  })

  it('removePeer on the default mesh excludes a site until addPeer', async () => {
    const net = createSimNetwork({})
    cleanups.push(() => net.close())
    const na = net.adapter('a')
    const nb = net.adapter('b')
    const a = await openSite({ id: 'a', storage: 'memory', heartbeatMs: 50, network: na })
    const b = await openSite({ id: 'b', storage: 'memory', heartbeatMs: 50, network: nb })
    cleanups.push(() => a.close(), () => b.close())
    await eventually(() => net.connected('a', 'b'), 5_000, 'a-b up')
    na.removePeer('b')
    await eventually(() => !net.connected('a', 'b'), 5_000, 'a-b down')
    expect(na.peers()).toEqual([])
    // b's view: a excludes it, so b does not list a either (it could never reach it).
    expect(nb.peers()).toEqual([])
    await b.session().put('z', 1)
    na.addPeer({ site: 'b' })
    await eventually(async () => (await a.session().get('z'))?.value === 1, 10_000, 'a gets z after addPeer')
  })
})

describe('libp2p network membership (in process, 127.0.0.1)', () => {
  it('addPeer lets a new site join at run time; removePeer closes its connection', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'causeway-member-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const nets: Record<string, Libp2pNetwork> = {}
    const sites: Record<string, Site> = {}
    cleanups.push(async () => {
      await Promise.allSettled(Object.values(sites).map((s) => s.close()))
      await Promise.allSettled(Object.values(nets).map((n) => n.stop()))
    })
    nets.a = await libp2pNetwork({ dialIntervalMs: 50 })
    nets.b = await libp2pNetwork({ peers: [{ site: 'a', addrs: nets.a.addrs }], dialIntervalMs: 50 })
    nets.a.addPeer({ site: 'b', peerId: nets.b.peerId })
    sites.a = await openSite({ id: 'a', storage: 'memory', durability: 'relaxed', heartbeatMs: 100, network: nets.a })
    sites.b = await openSite({ id: 'b', storage: 'memory', durability: 'relaxed', heartbeatMs: 100, network: nets.b })
    await sites.a.session().put('k', 'v1')
    await eventually(async () => (await sites.b!.session().get('k'))?.value === 'v1', 15_000, 'b gets k')
    // c joins while both run: it dials a; a allows it at run time.
    nets.c = await libp2pNetwork({ peers: [{ site: 'a', addrs: nets.a.addrs }], dialIntervalMs: 50 })
    sites.c = await openSite({ id: 'c', storage: 'memory', durability: 'relaxed', heartbeatMs: 100, network: nets.c })
    nets.a.addPeer({ site: 'c', addrs: nets.c.addrs })
    await eventually(() => nets.a!.connected('c'), 15_000, 'a-c connected')
    await eventually(async () => (await sites.c!.session().get('k'))?.value === 'v1', 15_000, 'c gets k')
    expect(sites.a.status().peers.map((p) => p.id).sort()).toEqual(['b', 'c'])
    nets.a.removePeer('c')
    expect(nets.a.peers().map((p) => p.site)).toEqual(['b'])
    await eventually(() => !nets.c!.connected('a'), 15_000, 'c sees a gone')
    await sites.a.session().put('k2', 'after')
    await eventually(async () => (await sites.b!.session().get('k2'))?.value === 'after', 15_000, 'b gets k2')
    // c is no longer allowed: it does not get back in although it keeps dialing.
    await new Promise((r) => setTimeout(r, 500))
    expect(nets.a.connected('c')).toBe(false)
    expect(await sites.c.session().get('k2')).toBeUndefined()
  }, 60_000)

  it('a site bootstraps over libp2p from a running site added at run time', async () => {
    const nets: Record<string, Libp2pNetwork> = {}
    const sites: Record<string, Site> = {}
    cleanups.push(async () => {
      await Promise.allSettled(Object.values(sites).map((s) => s.close()))
      await Promise.allSettled(Object.values(nets).map((n) => n.stop()))
    })
    nets.a = await libp2pNetwork({ dialIntervalMs: 50 })
    sites.a = await openSite({ id: 'a', storage: 'memory', durability: 'relaxed', heartbeatMs: 100, network: nets.a })
    const keys = Array.from({ length: 1200 }, (_, i) => `k/${i}`)
    const s = sites.a.session()
    for (let i = 0; i < keys.length; i += 200) await Promise.all(keys.slice(i, i + 200).map((k) => s.put(k, k)))
    nets.d = await libp2pNetwork({ peers: [{ site: 'a', addrs: nets.a.addrs }], dialIntervalMs: 50 })
    nets.a.addPeer({ site: 'd', peerId: nets.d.peerId })
    sites.d = await openSite({ id: 'd', storage: 'memory', durability: 'relaxed', heartbeatMs: 100, network: nets.d, bootstrap: 'a', bootstrapTimeoutMs: 30_000 })
    const got = await sites.d.session().getMany(keys)
    expect(got.size).toBe(keys.length)
    await sites.a.session().put('after', 1)
    await eventually(async () => (await sites.d!.session().get('after'))?.value === 1, 15_000, 'd replicates after the bootstrap')
  }, 60_000)
})
