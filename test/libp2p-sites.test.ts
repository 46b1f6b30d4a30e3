/**
 * In-process sites (openSite) replicating over real libp2p adapters on 127.0.0.1: concurrent
 * random writes at every site converge to the same state, under emulated latency, with
 * return-all siblings identical everywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { openSite } from 'causeway'
import type { Entry, Site } from 'causeway'
import { libp2pNetwork, peerIdFromKeyFile } from '@causeway/libp2p'
import type { Libp2pNetwork } from '@causeway/libp2p'

const IDS = ['la', 'lb', 'lc']

async function eventually(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await fn())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

function snapshot(m: Map<string, Entry>): string {
  return JSON.stringify([...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, e]) => [k, e.value, e.version, e.siblings ?? null]))
}

describe('sites over libp2p (in process)', () => {
  let dir = ''
  const nets: Record<string, Libp2pNetwork> = {}
  const sites: Record<string, Site> = {}

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'causeway-sites-'))
    const ids: Record<string, string> = {}
    for (const id of IDS) ids[id] = await peerIdFromKeyFile(join(dir, `${id}.key`))
    // Listen first (port 0), then tell each node the others' real addresses via peerId-only
    // entries for higher ids and addrs for lower ones: every pair has exactly one dialler.
    for (const id of IDS) {
      nets[id] = await libp2pNetwork({
        privateKey: join(dir, `${id}.key`),
        peers: IDS.filter((o) => o !== id).map((o) => (nets[o] !== undefined ? { site: o, addrs: nets[o]!.addrs } : { site: o, peerId: ids[o]! })),
        latencyMs: 15,
        dialIntervalMs: 50,
      })
    }
    for (const id of IDS) {
      sites[id] = await openSite({ id, storage: 'memory', durability: 'relaxed', heartbeatMs: 100, network: nets[id]!, conflicts: { default: 'lww', prefixes: { 'ra/': 'return-all' } } })
    }
    await eventually(async () => IDS.every((id) => IDS.every((o) => o === id || nets[id]!.connected(o))), 15_000, 'full mesh')
  }, 60_000)

  afterAll(async () => {
    await Promise.allSettled(Object.values(sites).map((s) => s.close()))
    await Promise.allSettled(Object.values(nets).map((n) => n.stop()))
    await rm(dir, { recursive: true, force: true })
  }, 30_000)

  it('random concurrent writes at all sites converge (lww and return-all)', async () => {
    const keys = ['k0', 'k1', 'k2', 'ra/0', 'ra/1']
    const op = fc.record({ site: fc.constantFrom(...IDS), key: fc.constantFrom(...keys), value: fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null)), del: fc.boolean() })
    const ops = fc.sample(fc.array(op, { minLength: 60, maxLength: 60 }), { numRuns: 1, seed: 42 })[0]!
    // Fire them concurrently, one session per site, so writes race across the WAN.
    const sessions = Object.fromEntries(IDS.map((id) => [id, sites[id]!.session()]))
    await Promise.all(ops.map((o) => (o.del ? sessions[o.site]!.delete(o.key) : sessions[o.site]!.put(o.key, o.value))))
    let last: string[] = []
    await eventually(async () => {
      last = await Promise.all(IDS.map(async (id) => snapshot(await sites[id]!.session().getMany(keys))))
      return last.every((s) => s === last[0])
    }, 20_000, `convergence (last: ${JSON.stringify(last)})`)
  })

  it('a session continued at another site sees its own writes', async () => {
    const s = sites['la']!.session()
    await s.put('chain/1', 'one')
    await s.put('chain/2', 'two')
    const s2 = sites['lc']!.session({ context: s.context(), waitMs: 10_000 })
    expect((await s2.get('chain/2'))?.value).toBe('two')
    expect((await s2.get('chain/1'))?.value).toBe('one')
  })
})
