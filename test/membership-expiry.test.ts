/**
 * offlineHorizonMs (#11): a peer silent for longer stops holding back log trimming and shows as
 * 'expired'; a connected peer never expires.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLevel } from 'memory-level'
import { openSite, type ShardDb } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import { eventually } from './helpers.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

describe('offlineHorizonMs', () => {
  it('a peer silent past the horizon stops holding back trimming and shows as expired', async () => {
    let offsetMs = 0
    const clock = { nowMs: () => Date.now() + offsetMs }
    const net = createSimNetwork({ latencyMs: 1 })
    cleanups.push(() => net.close())
    const dbs: ShardDb[] = []
    const storage = Object.assign(
      (i: number) => (dbs[i] ??= new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb),
      { supports: { persistent: true } },
    )
    const opts = { heartbeatMs: 20, durability: 'relaxed' as const, clock, offlineHorizonMs: 3_600_000 }
    const a = await openSite({ id: 'a', shards: 1, ...opts, network: net.adapter('a'), storage })
    const b = await openSite({ id: 'b', ...opts, network: net.adapter('b'), storage: 'memory' })
    const c = await openSite({ id: 'c', ...opts, network: net.adapter('c'), storage: 'memory' })
    cleanups.push(() => a.close(), () => b.close(), () => c.close())
    await eventually(() => net.connected('a', 'c'), 5_000, 'a-c up')
    await c.close()
    const n = 1500
    const s = a.session()
    for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => s.put(`k/${i + j}`, i + j)))
    await eventually(async () => (await b.session().get(`k/${n - 1}`))?.value === n - 1, 20_000, 'b has everything')
    const logKeys = async () => (await dbs[0]!.keys({ gte: 'l!', lt: 'l"' }).all()).length
    await new Promise((r) => setTimeout(r, 300))
    expect(await logKeys()).toBeGreaterThanOrEqual(n)
    expect(a.status().peers.find((p) => p.id === 'c')?.state).toBe('disconnected')
    // Two hours later (same clock everywhere): c is past the horizon, b is connected.
    offsetMs = 2 * 3_600_000
    await eventually(() => a.status().peers.find((p) => p.id === 'c')?.state === 'expired', 5_000, 'c expired')
    expect(a.status().peers.find((p) => p.id === 'b')?.state).not.toBe('expired')
    await eventually(async () => (await logKeys()) < n, 20_000, 'a trims without c')
  }, 60_000)
})
