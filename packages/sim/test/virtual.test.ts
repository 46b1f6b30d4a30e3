import { describe, expect, it } from 'vitest'
import { createSite, type Site } from '@causeway/core'
import { createRandom, createSimNetwork, randomInt } from '../src/index.js'

/** A seeded 3-site workload in virtual time; returns the trace and what every site reads at the end. */
async function workload(seed: number): Promise<{ trace: string; virtualMs: number; finals: string[] }> {
  const net = createSimNetwork({ seed, latencyMs: 20, jitterMs: 10, virtualTime: true })
  const ids = ['a', 'b', 'c']
  const sites: Site[] = []
  for (const id of ids) sites.push(await createSite({ id, storage: 'memory', network: net.adapter(id), clock: net.clock, timers: net.timers }))
  const rnd = createRandom(seed)
  const t0 = net.clock.nowMs()
  for (let step = 0; step < 60; step++) {
    const s = sites[randomInt(rnd, sites.length)]!
    void s.session().put(`k${randomInt(rnd, 5)}`, step)
    if (step === 20) net.partition(['a'], ['b', 'c'])
    if (step === 40) net.heal()
    await net.run(randomInt(rnd, 50))
  }
  await net.settle()
  const finals: string[] = []
  for (const s of sites) {
    const m = await s.session().getMany(['k0', 'k1', 'k2', 'k3', 'k4'])
    finals.push(JSON.stringify([...m].map(([k, e]) => [k, e.value, e.version])))
  }
  const virtualMs = net.clock.nowMs() - t0
  for (const s of sites) await s.close()
  await net.close()
  return { trace: net.trace(), virtualMs, finals }
}

describe('virtual time', () => {
  it('the same seed gives the same trace, twice in one process; another seed differs', async () => {
    const r1 = await workload(7)
    const r2 = await workload(7)
    const r3 = await workload(8)
    expect(r1.trace).toMatch(/^[1-9]\d*:[0-9a-f]{16}$/)
    expect(r2.trace).toBe(r1.trace)
    expect(r2.finals).toEqual(r1.finals)
    expect(r3.trace).not.toBe(r1.trace)
    // Converged: every site reads the same values and versions.
    expect(new Set(r1.finals).size).toBe(1)
  })

  it('heartbeats and latency cost virtual time only: ten virtual minutes of three sites', async () => {
    const net = createSimNetwork({ seed: 1, latencyMs: 50, virtualTime: true })
    const sites: Site[] = []
    for (const id of ['a', 'b', 'c']) sites.push(await createSite({ id, storage: 'memory', network: net.adapter(id), clock: net.clock, timers: net.timers }))
    const t0 = net.clock.nowMs()
    await sites[0]!.session().put('x', 1)
    await net.run(600_000)
    expect(net.clock.nowMs() - t0).toBe(600_000)
    // ~600 heartbeats per site to each of two peers were delivered in virtual time.
    expect(net.stats().delivered.frames).toBeGreaterThan(3 * 2 * 500)
    expect((await sites[2]!.session().get('x'))?.value).toBe(1)
    for (const s of sites) await s.close()
    await net.close()
  })

  it('a session waiting for an unreachable context advances virtual time by itself and rejects CONTEXT_UNAVAILABLE', async () => {
    const net = createSimNetwork({ seed: 1, latencyMs: 10, virtualTime: true })
    const a = await createSite({ id: 'a', storage: 'memory', network: net.adapter('a'), clock: net.clock, timers: net.timers })
    const b = await createSite({ id: 'b', storage: 'memory', network: net.adapter('b'), clock: net.clock, timers: net.timers })
    net.partition(['a'], ['b'])
    const s = a.session()
    await s.put('k', 1)
    const t0 = net.clock.nowMs()
    await expect(b.session({ context: s.context(), waitMs: 5000 }).get('k')).rejects.toMatchObject({ code: 'CONTEXT_UNAVAILABLE' })
    expect(net.clock.nowMs() - t0).toBeGreaterThanOrEqual(5000)
    await a.close()
    await b.close()
    await net.close()
  })

  it('run() needs virtual time', async () => {
    const net = createSimNetwork()
    await expect(net.run(10)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(() => createSimNetwork({ virtualTime: true, clock: { nowMs: () => 0 } })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    await net.close()
  })
})

describe('idle() wakes on events, not by polling', () => {
  it('waiting for a busy site costs no virtual time', async () => {
    const net = createSimNetwork({ seed: 1, virtualTime: true })
    const a = await createSite({ id: 'a', storage: 'memory', network: net.adapter('a'), clock: net.clock, timers: net.timers })
    const t0 = net.clock.nowMs()
    const s = a.session()
    // Call idle() at every microtask depth of a burst of puts, so some calls find the shards
    // flushing; a polling idle() would then sleep on (virtual) timers, advancing the clock.
    for (let depth = 0; depth < 40; depth++) {
      const puts = Array.from({ length: 20 }, (_, i) => s.put(`k${i}`, depth))
      for (let i = 0; i < depth; i++) await Promise.resolve()
      await a.idle()
      await Promise.all(puts)
    }
    expect(net.clock.nowMs()).toBe(t0)
    await a.close()
    expect(net.clock.nowMs()).toBe(t0)
    await net.close()
  })
})
