/**
 * site.removeMember (#11): the removal spreads, nobody waits for the removed site any more (log
 * trimming), what it wrote still reaches everyone, its frames are refused, and it survives a restart.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { CausewayError, openSite, type Site } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import { eventually, keptStorage, logKeys } from './helpers.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})


const state = (s: Site, id: string) => s.status().peers.find((p) => p.id === id)?.state

describe('removeMember', () => {
  it('spreads, unblocks trimming, keeps what the removed site wrote, refuses it afterwards', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    cleanups.push(() => net.close())
    const A = keptStorage()
    const B = keptStorage()
    const C = keptStorage()
    // a's adapter hides removePeer: the static configuration keeps listing c, so the engine's
    // own refusal is what keeps c out at a (b's network drops c by itself).
    const aNet = () => ({ ...net.adapter('a'), removePeer: undefined })
    const opts = { shards: 1, heartbeatMs: 20, durability: 'relaxed' as const }
    let a = await openSite({ id: 'a', ...opts, network: aNet(), storage: A.storage })
    const b = await openSite({ id: 'b', ...opts, network: net.adapter('b'), storage: B.storage })
    let c = await openSite({ id: 'c', ...opts, network: net.adapter('c'), storage: C.storage })
    cleanups.push(() => a.close(), () => b.close(), () => c.close())
    await c.session().put('c/seen-by-all', 1)
    await eventually(async () => (await b.session().get('c/seen-by-all'))?.value === 1, 10_000, 'b gets c/seen-by-all')
    // A write of c that only a receives: it must still reach b after c is gone.
    net.cut('b', 'c')
    net.cut('a', 'b')
    await c.session().put('c/only-at-a', 2)
    await eventually(async () => (await a.session().get('c/only-at-a'))?.value === 2, 10_000, 'a gets c/only-at-a')
    await c.close()
    net.heal()

    const n = 1500
    const s = a.session()
    for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => s.put(`a/${i + j}`, i + j)))
    await eventually(async () => (await b.session().get(`a/${n - 1}`))?.value === n - 1, 20_000, 'b gets all of a')
    // c is gone and holds back trimming at a and b: the logs keep everything.
    await new Promise((r) => setTimeout(r, 400))
    expect(await logKeys(A.dbs)).toBeGreaterThanOrEqual(n)
    expect(await logKeys(B.dbs)).toBeGreaterThanOrEqual(n)
    expect(state(a, 'c')).toBe('disconnected')

    await expect(a.removeMember('a')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(a.removeMember('not an id')).rejects.toBeInstanceOf(CausewayError)
    await a.removeMember('c')
    expect(state(a, 'c')).toBe('removed')
    await eventually(() => state(b, 'c') === 'removed', 10_000, 'the removal reaches b')
    await eventually(async () => (await logKeys(A.dbs)) < n, 20_000, 'a trims its log')
    await eventually(async () => (await logKeys(B.dbs)) < n, 20_000, 'b trims its log')
    // What c wrote is everywhere, including the write only a had.
    await eventually(async () => (await b.session().get('c/only-at-a'))?.value === 2, 10_000, 'b gets c/only-at-a through a')
    expect((await a.session().get('c/seen-by-all'))?.value).toBe(1)

    // c comes back (same data): its frames are refused; nothing new of it gets in.
    c = await openSite({ id: 'c', ...opts, network: net.adapter('c'), storage: C.storage })
    await c.session().put('c/after-removal', 3)
    await new Promise((r) => setTimeout(r, 500))
    expect(await a.session().get('c/after-removal')).toBeUndefined()
    expect(await b.session().get('c/after-removal')).toBeUndefined()
    expect(state(a, 'c')).toBe('removed')

    // The removal is persisted: a restart of a still refuses c.
    await a.close()
    a = await openSite({ id: 'a', ...opts, network: aNet(), storage: A.storage })
    expect(state(a, 'c')).toBe('removed')
    await c.session().put('c/after-restart', 4)
    await new Promise((r) => setTimeout(r, 500))
    expect(await a.session().get('c/after-restart')).toBeUndefined()
    expect((await a.session().get('c/only-at-a'))?.value).toBe(2)
  }, 60_000)

  it('tombstones are collected without the removed site, not before its removal', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    cleanups.push(() => net.close())
    const A = keptStorage()
    const opts = { shards: 1, heartbeatMs: 20, durability: 'relaxed' as const }
    const a = await openSite({ id: 'a', ...opts, network: net.adapter('a'), storage: A.storage })
    const b = await openSite({ id: 'b', ...opts, network: net.adapter('b'), storage: 'memory' })
    const c = await openSite({ id: 'c', ...opts, network: net.adapter('c'), storage: 'memory' })
    cleanups.push(() => a.close(), () => b.close(), () => c.close())
    await c.session().put('from-c', 1)
    await a.session().put('k', 1)
    await eventually(async () => (await c.session().get('k'))?.value === 1 && (await a.session().get('from-c'))?.value === 1, 10_000, 'c in sync')
    await c.close()
    await a.session().delete('k')
    await eventually(async () => (await b.session().get('k')) === undefined, 10_000, 'b sees the delete')
    const tombs = async () => (await A.dbs[0]!.keys({ gte: 'g!', lt: 'g"' }).all()).length
    // c never reported the delete applied: the tombstone must stay.
    await new Promise((r) => setTimeout(r, 300))
    await a.gc()
    expect(await tombs()).toBe(1)
    await a.removeMember('c')
    await eventually(async () => {
      await a.gc()
      return (await tombs()) === 0
    }, 10_000, 'the tombstone is collected once c is removed')
    expect(await a.session().get('k')).toBeUndefined()
    expect((await a.session().get('from-c'))?.value).toBe(1)
  }, 30_000)
})
