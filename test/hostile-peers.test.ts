import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { CausalContext, encodeEntry, encodeFrame, isCausewayError, openSite, PROTOCOL_VERSION, type Logger, type Site } from 'causeway'
import type { NetworkHandler, SiteProgress } from '@causeway/core'
import { createSimNetwork, type SimNetwork } from '@causeway/sim'
import { eventually } from './helpers.js'

/** A peer that is not a Causeway site: it sends whatever a test wants and records what it gets. */
function fakePeer(net: SimNetwork, id: string) {
  const adapter = net.adapter(id)
  const up = new Set<string>()
  const frames: Array<{ from: string; bytes: Uint8Array }> = []
  const handler: NetworkHandler = {
    peerUp: (p) => void up.add(p),
    peerDown: (p) => void up.delete(p),
    frame: (from, bytes) => void frames.push({ from, bytes }),
    drain: () => {},
    inspect: (): SiteProgress => ({ received: {}, applied: {}, idle: true }),
  }
  return {
    up,
    frames,
    start: () => adapter.start(id, handler),
    send: (to: string, bytes: Uint8Array) => adapter.send(to, bytes),
  }
}

/** A logger that counts warnings (to check rate limiting) and keeps the messages. */
function countingLogger() {
  const warns: string[] = []
  const errors: string[] = []
  const log: Logger = { debug() {}, info() {}, warn: (_o, m) => void warns.push(m ?? ''), error: (_o, m) => void errors.push(m ?? '') }
  return { log, warns, errors }
}

async function sameEverywhere(sites: Site[], keys: string[]): Promise<boolean> {
  const views = await Promise.all(sites.map(async (s) => JSON.stringify([...(await s.session().getMany(keys))].map(([k, e]) => [k, e.value, e.version]))))
  return views.every((v) => v === views[0])
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

describe('clock: nothing from outside moves a site clock beyond physical time + maxClockSkewMs', () => {
  it('a forged context token is refused with CLOCK_SKEW and the site keeps every write (#8.1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-skew-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const { log, warns } = countingLogger()
    let site = await openSite({ id: 'a', dir, shards: 2, logger: log })
    const forged = new CausalContext()
    forged.maxTime = Number.MAX_SAFE_INTEGER
    let err: unknown
    try {
      site.session({ context: forged.encode() })
    } catch (e) {
      err = e
    }
    expect(isCausewayError(err, 'CLOCK_SKEW')).toBe(true)
    expect(warns.length).toBe(1)
    const s = site.session()
    await s.put('k1', 'v1')
    await s.put('k1', 'v2')
    const v3 = await s.put('k1', 'v3')
    expect(v3.time).toBeLessThan((Date.now() + 60_000) * 1000) // Lamport times count microseconds
    expect((await site.session().get('k1'))?.value).toBe('v3')
    await site.close()
    site = await openSite({ id: 'a', dir, shards: 2 }) // restarts on what it acknowledged
    expect((await site.session().get('k1'))?.value).toBe('v3')
    await site.close()
  })

  it('a token from a site whose clock is ahead within the bound is accepted', async () => {
    const site = await openSite({ id: 'a', storage: 'memory', maxClockSkewMs: 60_000 })
    cleanups.push(() => site.close())
    const ctx = new CausalContext()
    ctx.maxTime = (Date.now() + 30_000) * 1000
    const v = await site.session({ context: ctx.encode() }).put('k', 1)
    expect(v.time).toBeGreaterThan(ctx.maxTime)
  })

  it("a peer's write from too far ahead waits, and arrives once the receiver's clock catches up", async () => {
    let bOffsetMs = 0
    const net = createSimNetwork()
    cleanups.push(() => net.close())
    const a = await openSite({ id: 'a', storage: 'memory', heartbeatMs: 20, network: net.adapter('a'), clock: { nowMs: () => Date.now() + 120_000 } })
    const b = await openSite({ id: 'b', storage: 'memory', heartbeatMs: 20, network: net.adapter('b'), clock: { nowMs: () => Date.now() + bOffsetMs }, maxClockSkewMs: 60_000 })
    cleanups.push(() => b.close(), () => a.close())
    await a.session().put('x', 'from the future')
    await new Promise((r) => setTimeout(r, 300))
    expect(await b.session().get('x')).toBeUndefined()
    const vb = await b.session().put('y', 'now')
    expect(vb.time).toBeLessThan((Date.now() + 60_000) * 1000) // b's clock was not dragged ahead
    bOffsetMs = 90_000 // b's clock catches up to within the bound
    await eventually(async () => (await b.session().get('x'))?.value === 'from the future', 10_000, 'x at b')
    await eventually(() => sameEverywhere([a, b], ['x', 'y']), 10_000, 'convergence')
  })
})

describe('lying and broken peers (#14.4, live fuzz)', () => {
  it('a hello claiming more of our own stream than we hold: the site keeps serving and converges with its honest peers', async () => {
    const net = createSimNetwork()
    cleanups.push(() => net.close())
    const { log, errors } = countingLogger()
    const opts = { storage: 'memory' as const, shards: 2, heartbeatMs: 25, recoveryTimeoutMs: 300 }
    const a = await openSite({ id: 'a', network: net.adapter('a'), ...opts })
    const b = await openSite({ id: 'b', network: net.adapter('b'), logger: log, ...opts })
    cleanups.push(() => b.close(), () => a.close())
    const evil = fakePeer(net, 'evil')
    await evil.start()
    await eventually(() => evil.up.has('b'), 5000, 'evil connected to b')
    const sb = b.session()
    for (let i = 0; i < 10; i++) await sb.put(`k${i}`, i)
    // The forged hello: a holds b's own streams far beyond what b has.
    evil.send('b', encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, site: 'evil', accepts: true, sends: true, rv: [['b/0', 82], ['b/1', 90]], ups: [] }))
    // Reads keep being served at once while b waits for the entries the liar claimed.
    await new Promise((r) => setTimeout(r, 20))
    expect((await b.session().get('k1'))?.value).toBe(1)
    const writes = Array.from({ length: 20 }, (_, i) => sb.put(`w${i}`, i))
    const versions = await Promise.all(writes) // they complete once the liar is found out
    expect(versions).toHaveLength(20)
    expect(errors.some((m) => m.includes('faulty'))).toBe(true)
    const keys = [...Array.from({ length: 10 }, (_, i) => `k${i}`), ...Array.from({ length: 20 }, (_, i) => `w${i}`)]
    await eventually(() => sameEverywhere([a, b], keys), 10_000, 'a and b converge')
    expect((await a.session().getMany(keys)).size).toBe(30)
    // The site never stopped: writes and reads still work.
    await b.session().put('after', true)
    await eventually(async () => (await a.session().get('after'))?.value === true, 5000, 'after at a')
  })

  it('restored from an old backup, a site fetches its own lost writes from a peer and does not reuse their sequence numbers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cw-backup-'))
    cleanups.push(() => rmSync(root, { recursive: true, force: true }))
    const net = createSimNetwork()
    cleanups.push(() => net.close())
    const opts = { shards: 2, heartbeatMs: 25, durability: 'relaxed' as const }
    const a = await openSite({ id: 'a', storage: 'memory', network: net.adapter('a'), ...opts })
    cleanups.push(() => a.close())
    let b = await openSite({ id: 'b', dir: join(root, 'b'), network: net.adapter('b'), ...opts })
    for (let i = 0; i < 5; i++) await b.session().put(`old${i}`, i)
    await net.settle()
    await b.close()
    cpSync(join(root, 'b'), join(root, 'backup'), { recursive: true })
    b = await openSite({ id: 'b', dir: join(root, 'b'), network: net.adapter('b', {}), ...opts })
    for (let i = 0; i < 30; i++) await b.session().put(`lost${i}`, i)
    await net.settle()
    await b.close()
    rmSync(join(root, 'b'), { recursive: true, force: true })
    cpSync(join(root, 'backup'), join(root, 'b'), { recursive: true })
    b = await openSite({ id: 'b', dir: join(root, 'b'), network: net.adapter('b', {}), ...opts })
    cleanups.push(() => b.close())
    const lost = Array.from({ length: 30 }, (_, i) => `lost${i}`)
    await eventually(async () => (await b.session().getMany(lost)).size === 30, 10_000, 'b recovers its lost writes')
    for (let i = 0; i < 10; i++) await b.session().put(`new${i}`, i)
    const all = [...lost, ...Array.from({ length: 10 }, (_, i) => `new${i}`), ...Array.from({ length: 5 }, (_, i) => `old${i}`)]
    await eventually(() => sameEverywhere([a, b], all), 10_000, 'convergence')
    expect((await a.session().getMany(all)).size).toBe(45)
  })

  it('a peer sending mutated frames is logged (rate-limited) and disconnected; the site keeps serving and converges', async () => {
    const net = createSimNetwork()
    cleanups.push(() => net.close())
    const { log, warns, errors } = countingLogger()
    const opts = { storage: 'memory' as const, shards: 2, heartbeatMs: 25 }
    const a = await openSite({ id: 'a', network: net.adapter('a'), ...opts })
    const b = await openSite({ id: 'b', network: net.adapter('b'), logger: log, ...opts })
    cleanups.push(() => b.close(), () => a.close())
    const evil = fakePeer(net, 'evil')
    await evil.start()
    await eventually(() => evil.up.has('b'), 5000, 'evil connected to b')
    // Real frames to mutate: entries and frames as a site would send them.
    const entry = encodeEntry({ stream: 'evil/0', seq: 1, time: Date.now(), site: 'evil', deps: [['a/0', 1]], ops: [{ key: 'k', value: new Uint8Array([0xa1, 0x78]), supersedes: [] }] })
    const seeds = [
      encodeFrame({ t: 'writes', e: [entry] }),
      encodeFrame({ t: 'beat', rv: [['a/0', 3]], ups: ['a'], reports: [{ site: 'a', epoch: 1, av: [['a/0', 2]] }] }),
      encodeFrame({ t: 'ack', rv: [['b/0', 1]] }),
      encodeFrame({ t: 'nack', stream: 'b/1', have: 0 }),
    ]
    const mutated = fc.sample(
      fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([f, flips]) => {
        const out = Uint8Array.from(f)
        for (const [at, byte] of flips) out[at % out.length] = byte
        return out
      }),
      { numRuns: 400, seed: 14 },
    )
    const sa = a.session()
    const sb = b.session()
    let sent = 0
    for (let i = 0; i < mutated.length; i++) {
      if (evil.up.has('b')) {
        evil.send('b', mutated[i]!)
        sent++
      }
      if (i % 20 === 0) {
        await sa.put(`a${i}`, i)
        await sb.put(`b${i}`, i)
        expect((await b.session().get(`b${i}`))?.value).toBe(i)
      }
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1))
    }
    expect(sent).toBeGreaterThan(32)
    await eventually(() => errors.some((m) => m.includes('disconnected')), 5000, 'the bad peer is disconnected')
    // Rate-limited: far fewer warnings than bad frames.
    expect(warns.length).toBeLessThan(40)
    const keys = Array.from({ length: 20 }, (_, i) => [`a${i * 20}`, `b${i * 20}`]).flat()
    await eventually(() => sameEverywhere([a, b], keys), 10_000, 'a and b converge')
    expect((await b.session().getMany(keys)).size).toBe(40)
  })
})
