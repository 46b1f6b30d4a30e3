/**
 * End-to-end: real sites over the sim network, a random multi-session workload with a partition,
 * the history checked for causal consistency and the final reads for convergence. Exercises the
 * sim and the checker against the engine (imported from source, so it tracks the working tree).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createSite } from '../../core/src/index.js'
import type { Site } from '../../core/src/index.js'
import { createRandom, createSimNetwork, type SimNetwork } from '../../sim/src/index.js'
import { checkHistory, createHistory, type Entry } from '../src/index.js'

let nets: SimNetwork[] = []
let sites: Site[] = []
afterEach(async () => {
  for (const s of sites) await s.close().catch(() => {})
  for (const n of nets) await n.close()
  sites = []
  nets = []
})

const conflicts = { default: 'lww' as const, prefixes: { 'r/': 'return-all' as const } }
const KEYS = ['k/a', 'k/b', 'k/c', 'r/x', 'r/y']

describe('engine over the sim network', () => {
  it('a random workload with a partition is causally consistent and converges', async () => {
    const random = createRandom(2024)
    const int = (n: number) => Math.floor(random() * n)
    const net = createSimNetwork({ latencyMs: 3, jitterMs: 4, seed: 9 })
    nets.push(net)
    const ids = ['s0', 's1', 's2']
    for (const id of ids) {
      sites.push(await createSite({ id, storage: 'memory', shards: 2, conflicts, durability: 'relaxed', network: net.adapter(id), heartbeatMs: 50 }))
    }
    const h = createHistory()
    const sessions = Array.from({ length: 6 }, (_, i) => ({ s: sites[i % 3]!.session(), rec: h.session(ids[i % 3]!, `S${i}`) }))
    let n = 0
    for (let step = 0; step < 600; step++) {
      if (step === 200) net.partition(['s0'], ['s1', 's2'])
      if (step === 400) net.heal()
      const { s, rec } = sessions[int(sessions.length)]!
      const key = KEYS[int(KEYS.length)]!
      const op = int(10)
      if (op < 4) {
        const value = `${rec.id}:${n++}`
        rec.recordPut(key, value, await s.put(key, value))
      } else if (op < 5) rec.recordDelete(key, await s.delete(key))
      else if (op < 8) rec.recordGet(key, await s.get(key))
      else {
        const ks = KEYS.filter(() => random() < 0.5)
        rec.recordGetMany(ks, await s.getMany(ks))
      }
      if (step % 20 === 0) await new Promise((r) => setTimeout(r, int(10)))
    }
    await net.settle(20_000)
    const finalReads = new Map<string, Map<string, Entry | undefined>>()
    for (const site of sites) {
      const s = site.session()
      const m = new Map<string, Entry | undefined>()
      for (const k of KEYS) m.set(k, await s.get(k))
      finalReads.set(site.id, m)
    }
    const r = checkHistory(h, { conflicts, finalReads, complete: true })
    expect(r.violations).toEqual([])
    expect(net.stats().frames).toBeGreaterThan(0)
  })
})
