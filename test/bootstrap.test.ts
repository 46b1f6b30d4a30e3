/**
 * openSite({ bootstrap }) (#11): a new site copies a causal cut from a peer and replicates from its
 * vector. Works after every log was trimmed, while the source keeps taking writes (causal checker),
 * and resumes after its connection is cut half-way.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { openSite, type Entry, type Site } from 'causeway'
import { createSimNetwork, type SimAdapter } from '@causeway/sim'
import { checkHistory, createHistory } from '@causeway/checker'
import { eventually, keptStorage, logKeys } from './helpers.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})


async function all(site: Site, keys: string[]): Promise<Map<string, Entry>> {
  return site.session().getMany(keys)
}

const opts = { heartbeatMs: 20, durability: 'relaxed' as const }

/** Wrap a sim adapter to watch the bootstrap requests it sends. */
function watched(adapter: SimAdapter, onRequest: (shard: number, after: string, n: number) => void): SimAdapter {
  let n = 0
  return {
    ...adapter,
    send: (peer, bytes) => {
      // bsreq frames are [7, shard, after] in the codec's array encoding; decode via the engine's codec.
      const ok = adapter.send(peer, bytes)
      const f = tryReq(bytes)
      if (f && ok) onRequest(f.shard, f.after, ++n)
      return ok
    },
  }
}

let decodeFrame: ((b: Uint8Array) => { t: string; shard?: number; after?: string }) | undefined
function tryReq(bytes: Uint8Array): { shard: number; after: string } | undefined {
  const f = decodeFrame!(bytes)
  return f.t === 'bsreq' ? { shard: f.shard!, after: f.after! } : undefined
}

describe('bootstrap', async () => {
  decodeFrame = (await import('../packages/core/dist/protocol.js')).decodeFrame as typeof decodeFrame

  it('a new site copies every live key after every log has been trimmed, into another shard count', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    cleanups.push(() => net.close())
    const A = keptStorage()
    // Every site has the same conflicts (configuration agreement: different ones would be refused).
    const conflicts = { default: 'lww' as const, prefixes: { 'r/': 'return-all' as const } }
    const a = await openSite({ id: 'a', shards: 1, ...opts, network: net.adapter('a'), storage: A.storage, conflicts })
    const b = await openSite({ id: 'b', shards: 2, ...opts, network: net.adapter('b'), storage: 'memory', conflicts })
    cleanups.push(() => a.close(), () => b.close())
    const n = 2000
    const keys = Array.from({ length: n }, (_, i) => `k/${String(i).padStart(4, '0')}`)
    const s = a.session()
    for (let i = 0; i < n; i += 100) await Promise.all(keys.slice(i, i + 100).map((k, j) => s.put(k, { i: i + j })))
    await s.delete('k/0007')
    // Concurrent siblings under a return-all prefix (b keeps them; so must the new site).
    await net.partition(['a'], ['b'])
    await a.session().put('r/x', 'from-a')
    await b.session().put('r/x', 'from-b')
    net.heal()
    await eventually(async () => (await b.session().get('r/x'))?.siblings?.length === 2, 10_000, 'siblings at b')
    await eventually(async () => (await logKeys(A.dbs)) < 100, 20_000, "a's log trimmed")
    const want = await all(b, [...keys, 'r/x'])
    expect(want.size).toBe(n) // 1,999 live keys plus r/x

    const d = await openSite({ id: 'd', shards: 3, ...opts, network: net.adapter('d'), storage: 'memory', bootstrap: 'b', conflicts: { default: 'lww', prefixes: { 'r/': 'return-all' } } })
    cleanups.push(() => d.close())
    // Installed when openSite resolves: every live key, with versions and siblings.
    const got = await all(d, [...keys, 'r/x'])
    expect(got.size).toBe(want.size)
    for (const [k, e] of want) expect(got.get(k), k).toEqual(e)
    expect(got.has('k/0007')).toBe(false)
    // And it replicates normally from the snapshot's vector, both ways.
    await a.session().put('k/after', 1)
    await d.session().put('d/own', 2)
    await eventually(async () => (await d.session().get('k/after'))?.value === 1, 10_000, 'd gets a new write')
    await eventually(async () => (await a.session().get('d/own'))?.value === 2, 10_000, 'a gets d writes')
  }, 60_000)

  it('a bootstrap while the source takes writes is causally consistent (checker), and converges', async () => {
    const net = createSimNetwork({ latencyMs: 2, jitterMs: 2 })
    cleanups.push(() => net.close())
    const a = await openSite({ id: 'a', shards: 2, ...opts, network: net.adapter('a'), storage: 'memory' })
    const b = await openSite({ id: 'b', shards: 1, ...opts, network: net.adapter('b'), storage: 'memory' })
    cleanups.push(() => a.close(), () => b.close())
    const h = createHistory()
    const keys = Array.from({ length: 1500 }, (_, i) => `k/${String(i).padStart(4, '0')}`)
    const fill = a.session()
    const rf = h.session('a', 'fill')
    for (let i = 0; i < keys.length; i += 100) {
      const chunk = keys.slice(i, i + 100)
      const vs = await Promise.all(chunk.map((k) => fill.put(k, `fill:${k}`)))
      chunk.forEach((k, j) => rf.recordPut(k, `fill:${k}`, vs[j]))
    }
    // Writers keep going at a and b during the bootstrap: causal chains across keys far apart in
    // scan order (so a cut that mixed old and new states would show).
    let stop = false
    let n = 0
    const writer = async (site: Site, id: string, seed: number) => {
      const s = site.session()
      const rec = h.session(site.id, id)
      let x = seed
      while (!stop) {
        x = (x * 1103515245 + 12345) % 2147483648
        const k = keys[x % keys.length]!
        const v = `${id}:${n++}`
        rec.recordPut(k, v, await s.put(k, v))
        if (n % 16 === 0) await new Promise((r) => setTimeout(r, 1))
      }
    }
    const writers = [writer(a, 'wa1', 1), writer(a, 'wa2', 2), writer(b, 'wb', 3)]
    await new Promise((r) => setTimeout(r, 50))
    const d = await openSite({ id: 'd', shards: 3, ...opts, network: net.adapter('d'), storage: 'memory', bootstrap: 'a' })
    cleanups.push(() => d.close())
    // Read right away, while the writers still write: what d serves must be a causal cut.
    const rd = h.session('d', 'reader')
    for (let i = 0; i < 3; i++) {
      const s = d.session()
      const rec = i === 0 ? rd : h.session('d', `reader${i}`)
      rec.recordGetMany(keys, await s.getMany(keys))
      await new Promise((r) => setTimeout(r, 20))
    }
    stop = true
    await Promise.all(writers)
    await net.settle(30_000)
    const finalReads = new Map<string, Map<string, Entry | undefined>>()
    for (const site of [a, b, d]) {
      const m = await site.session().getMany(keys)
      finalReads.set(site.id, new Map(keys.map((k) => [k, m.get(k)])))
    }
    const r = checkHistory(h, { finalReads, complete: true })
    expect(r.violations.slice(0, 3)).toEqual([])
    expect(r.stats.writes).toBeGreaterThan(keys.length)
  }, 90_000)

  it('a bootstrap whose connection is cut half-way resumes from the last key it received', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    cleanups.push(() => net.close())
    const a = await openSite({ id: 'a', shards: 1, ...opts, network: net.adapter('a'), storage: 'memory' })
    cleanups.push(() => a.close())
    const keys = Array.from({ length: 3000 }, (_, i) => `k/${String(i).padStart(4, '0')}`)
    const s = a.session()
    for (let i = 0; i < keys.length; i += 200) await Promise.all(keys.slice(i, i + 200).map((k) => s.put(k, k)))
    const requests: Array<[number, string]> = []
    let cut = false
    const adapter = watched(net.adapter('d'), (shard, after, count) => {
      requests.push([shard, after])
      if (count === 3 && !cut) {
        // The third request goes out, then the link drops (the answer is lost) and comes back later.
        cut = true
        queueMicrotask(() => net.cut('a', 'd'))
        setTimeout(() => net.restore('a', 'd'), 300)
      }
    })
    const d = await openSite({ id: 'd', shards: 1, ...opts, network: adapter, storage: 'memory', bootstrap: 'a' })
    cleanups.push(() => d.close())
    expect(cut).toBe(true)
    const got = await d.session().getMany(keys)
    expect(got.size).toBe(keys.length)
    // Resumed, not restarted: the start was asked for once, and the cut request was asked again.
    expect(requests.filter(([sh, af]) => sh === 0 && af === '').length).toBe(1)
    expect(requests[3]).toEqual(requests[2])
  }, 60_000)

  it('times out with BOOTSTRAP_FAILED when the source never answers; reopening a site ignores bootstrap', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    cleanups.push(() => net.close())
    await expect(openSite({ id: 'd', ...opts, network: net.adapter('d'), storage: 'memory', bootstrap: 'nobody', bootstrapTimeoutMs: 300 })).rejects.toMatchObject({ code: 'BOOTSTRAP_FAILED' })
    await expect(openSite({ id: 'd', ...opts, storage: 'memory', bootstrap: 'a' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    const D = keptStorage()
    let d = await openSite({ id: 'd', ...opts, network: net.adapter('d'), storage: D.storage })
    await d.session().put('x', 1)
    await d.close()
    // A site already lives in this storage: bootstrap is ignored (no source is even up).
    d = await openSite({ id: 'd', ...opts, network: net.adapter('d'), storage: D.storage, bootstrap: 'a', bootstrapTimeoutMs: 300 })
    cleanups.push(() => d.close())
    expect((await d.session().get('x'))?.value).toBe(1)
  }, 30_000)

  it('a bootstrap cut short is never served, and starts over when reopened with bootstrap', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    cleanups.push(() => net.close())
    const a = await openSite({ id: 'a', shards: 1, ...opts, network: net.adapter('a'), storage: 'memory' })
    cleanups.push(() => a.close())
    const keys = Array.from({ length: 3000 }, (_, i) => `k/${String(i).padStart(4, '0')}`)
    const s = a.session()
    for (let i = 0; i < keys.length; i += 200) await Promise.all(keys.slice(i, i + 200).map((k) => s.put(k, k)))
    const D = keptStorage()
    const adapter = watched(net.adapter('d'), (_shard, _after, count) => {
      if (count === 3) queueMicrotask(() => net.cut('a', 'd')) // and never restored during this attempt
    })
    await expect(openSite({ id: 'd', ...opts, network: adapter, storage: D.storage, bootstrap: 'a', bootstrapTimeoutMs: 800 })).rejects.toMatchObject({ code: 'BOOTSTRAP_FAILED' })
    await D.dbs[0]!.open()
    const partial = (await D.dbs[0]!.keys({ gte: 'k!', lt: 'k"' }).all()).length
    await D.dbs[0]!.close()
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThan(keys.length)
    // Without the option the half-copied site refuses to open; with it, the copy starts over.
    await expect(openSite({ id: 'd', ...opts, network: net.adapter('d'), storage: D.storage })).rejects.toMatchObject({ code: 'BOOTSTRAP_FAILED' })
    net.restore('a', 'd')
    const d = await openSite({ id: 'd', ...opts, network: net.adapter('d'), storage: D.storage, bootstrap: 'a' })
    cleanups.push(() => d.close())
    expect((await d.session().getMany(keys)).size).toBe(keys.length)
    await d.close()
    // Installed: a later reopen ignores bootstrap and keeps the data.
    const d2 = await openSite({ id: 'd', ...opts, network: net.adapter('d'), storage: D.storage, bootstrap: 'a' })
    cleanups.push(() => d2.close())
    expect((await d2.session().getMany(keys)).size).toBe(keys.length)
  }, 60_000)
})
