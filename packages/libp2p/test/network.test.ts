import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createServer } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { stat } from 'node:fs/promises'
import { isCausewayError } from '@causeway/core'
import { libp2pNetwork, peerIdFromKeyFile, writeSwarmKeyFile } from '../src/index.js'
import type { Libp2pNetwork } from '../src/index.js'
import { RecordingHandler, Scratch, keysFor, recordingLogger, sleep, waitFor } from './helpers.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

/** Two nodes on 127.0.0.1 ports chosen by the OS: a listens first, b knows a's address. */
async function pair(scratch: Scratch, extra: { a?: object; b?: object } = {}) {
  const ids = await keysFor(scratch, ['a', 'b'])
  const netA = await libp2pNetwork({ privateKey: scratch.path('a.key'), peers: [{ site: 'b', peerId: ids['b'] }], dialIntervalMs: 50, maxDialIntervalMs: 200, ...extra.a })
  const netB = await libp2pNetwork({ privateKey: scratch.path('b.key'), peers: [{ site: 'a', addrs: netA.addrs }], dialIntervalMs: 50, maxDialIntervalMs: 200, ...extra.b })
  return { ids, netA, netB }
}

describe('libp2pNetwork', () => {
  const scratch = new Scratch()
  const nets: Libp2pNetwork[] = []
  beforeEach(async () => { await scratch.init() })
  afterEach(async () => {
    await Promise.all(nets.splice(0).map((n) => n.stop()))
    await scratch.cleanup()
  })

  it('creates a 0600 key file once and keeps the PeerId stable', async () => {
    const p = scratch.path('k.key')
    const id1 = await peerIdFromKeyFile(p)
    const id2 = await peerIdFromKeyFile(p)
    expect(id1).toBe(id2)
    expect(id1).toMatch(/^12D3KooW/)
    expect((await stat(p)).mode & 0o777).toBe(0o600)
    // A missing directory is created now (keys.test.ts); a parent that is a file still fails.
    await expect(peerIdFromKeyFile(scratch.path('k.key/k.key'))).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })

  it('rejects bad options with INVALID_OPTIONS', async () => {
    await expect(libp2pNetwork({ peers: [{ site: 'x', addrs: ['/ip4/127.0.0.1/tcp/1'] }] })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    await expect(libp2pNetwork({ peers: [{ site: 'Bad Id', peerId: 'x' }] })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    await expect(libp2pNetwork({ listne: [] } as never)).rejects.toThrow(/unknown option "listne"/)
  })

  it('reports ADDRESS_IN_USE for a taken port', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    try {
      const err = await libp2pNetwork({ listen: [`/ip4/127.0.0.1/tcp/${port}`] }).catch((e: unknown) => e)
      expect(isCausewayError(err, 'ADDRESS_IN_USE')).toBe(true)
    } finally {
      server.close()
    }
  })

  it('delivers frames in order both ways, with peerUp before frames', async () => {
    const { netA, netB } = await pair(scratch)
    nets.push(netA, netB)
    expect(netA.addrs[0]).toMatch(new RegExp(`/p2p/${netA.peerId}$`))
    const ha = new RecordingHandler()
    const hb = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('b', hb)
    expect(netA.peers()).toEqual([{ site: 'b', send: true, receive: true }])
    await waitFor(() => netA.connected('b') && netB.connected('a'), 10_000, 'connection')
    expect(ha.events).toEqual(['up:b'])
    expect(hb.events).toEqual(['up:a'])
    const n = 500
    for (let i = 0; i < n; i++) {
      expect(netA.send('b', enc(`a${i}`))).toBe(true)
      expect(netB.send('a', enc(`b${i}`))).toBe(true)
    }
    netA.send('b', new Uint8Array(0))
    await waitFor(() => hb.framesFrom('a').length === n + 1 && ha.framesFrom('b').length === n, 10_000, 'frames')
    expect(hb.framesFrom('a').slice(0, n).map(dec)).toEqual(Array.from({ length: n }, (_, i) => `a${i}`))
    expect(ha.framesFrom('b').map(dec)).toEqual(Array.from({ length: n }, (_, i) => `b${i}`))
    expect(hb.framesFrom('a')[n]!.byteLength).toBe(0)
    expect(netA.send('nobody', enc('x'))).toBe(false)
    expect(() => netA.send('b', new Uint8Array(netA.maxFrameBytes + 1))).toThrow(/maxFrameBytes/)
  })

  it('peerDown on stop, reconnects when the peer restarts with the same key', async () => {
    const { ids, netA, netB } = await pair(scratch, { a: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
    nets.push(netA)
    const ha = new RecordingHandler()
    const hb = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('b', hb)
    await waitFor(() => netA.connected('b') && netB.connected('a'), 10_000, 'first connection')
    await netB.stop()
    expect(hb.events).toEqual(['up:a', 'down:a'])
    await waitFor(() => !netA.connected('b'), 10_000, 'a sees b down')
    expect(ha.events).toEqual(['up:b', 'down:b'])
    expect(netB.send('a', enc('late'))).toBe(false)
    // b comes back (same key file => same PeerId) and a accepts it again.
    const netB2 = await libp2pNetwork({ privateKey: scratch.path('b.key'), peers: [{ site: 'a', addrs: netA.addrs }], dialIntervalMs: 50 })
    nets.push(netB2)
    expect(netB2.peerId).toBe(ids['b'])
    const hb2 = new RecordingHandler()
    await netB2.start('b', hb2)
    await waitFor(() => netA.connected('b') && netB2.connected('a'), 10_000, 'reconnection')
    expect(ha.events).toEqual(['up:b', 'down:b', 'up:b'])
    netB2.send('a', enc('again'))
    await waitFor(() => ha.framesFrom('b').length === 1, 5000, 'frame after reconnect')
    expect(dec(ha.framesFrom('b')[0]!)).toBe('again')
  })

  it('a restarted listener is redialled by its peer', async () => {
    const ids = await keysFor(scratch, ['a', 'b'])
    // a listens on a fixed port so that b can find it again after a restart.
    const probe = await libp2pNetwork({ privateKey: scratch.path('a.key') })
    const fixed = probe.addrs[0]!
    await probe.stop()
    const listen = [fixed.replace(/\/p2p\/.*$/, '')]
    const netA = await libp2pNetwork({ privateKey: scratch.path('a.key'), listen, peers: [{ site: 'b', peerId: ids['b'] }] })
    const netB = await libp2pNetwork({ privateKey: scratch.path('b.key'), peers: [{ site: 'a', addrs: [fixed] }], dialIntervalMs: 50, maxDialIntervalMs: 200 })
    nets.push(netB)
    const hb = new RecordingHandler()
    await netA.start('a', new RecordingHandler())
    await netB.start('b', hb)
    await waitFor(() => netB.connected('a'), 10_000, 'connection')
    await netA.stop()
    await waitFor(() => !netB.connected('a'), 10_000, 'down')
    const netA2 = await libp2pNetwork({ privateKey: scratch.path('a.key'), listen, peers: [{ site: 'b', peerId: ids['b'] }] })
    nets.push(netA2)
    const ha2 = new RecordingHandler()
    await netA2.start('a', ha2)
    await waitFor(() => netB.connected('a') && netA2.connected('b'), 10_000, 'redial')
    expect(hb.events).toEqual(['up:a', 'down:a', 'up:a'])
    netB.send('a', enc('hi'))
    await waitFor(() => ha2.totalFrames() === 1, 5000, 'frame')
  })

  it('three nodes dialling each other at once end with one stream per pair', async () => {
    const sites = ['a', 'b', 'c']
    const ids = await keysFor(scratch, sites)
    // First pass learns each node's port; second pass restarts them fully meshed on those ports.
    const addrs: Record<string, string> = {}
    for (const s of sites) {
      const probe = await libp2pNetwork({ privateKey: scratch.path(`${s}.key`) })
      addrs[s] = probe.addrs[0]!
      await probe.stop()
    }
    const handlers: Record<string, RecordingHandler> = {}
    const byName: Record<string, Libp2pNetwork> = {}
    for (const s of sites) {
      const net = await libp2pNetwork({
        privateKey: scratch.path(`${s}.key`),
        listen: [addrs[s]!.replace(/\/p2p\/.*$/, '')],
        peers: sites.filter((o) => o !== s).map((o) => ({ site: o, addrs: [addrs[o]!] })),
        dialIntervalMs: 20,
        maxDialIntervalMs: 100,
      })
      nets.push(net)
      byName[s] = net
      handlers[s] = new RecordingHandler()
    }
    expect(ids['a']).toBe(byName['a']!.peerId)
    await Promise.all(sites.map((s) => byName[s]!.start(s, handlers[s]!)))
    await waitFor(() => sites.every((s) => sites.every((o) => o === s || byName[s]!.connected(o))), 10_000, 'full mesh')
    await sleep(300) // let any duplicate stream settle
    for (const s of sites) for (const o of sites) if (o !== s) byName[s]!.send(o, enc(`${s}->${o}`))
    await waitFor(() => sites.every((s) => handlers[s]!.totalFrames() === 2), 5000, 'mesh frames')
    for (const s of sites) {
      for (const o of sites) {
        if (o === s) continue
        expect(handlers[s]!.framesFrom(o).map(dec)).toEqual([`${o}->${s}`])
        // up/down strictly alternate, ending up.
        const ev = handlers[s]!.events.filter((e) => e.endsWith(`:${o}`))
        ev.forEach((e, i) => expect(e.startsWith(i % 2 === 0 ? 'up' : 'down')).toBe(true))
        expect(ev.at(-1)).toBe(`up:${o}`)
      }
    }
  })

  it('refuses a peer that is not on the allow-list', async () => {
    const ids = await keysFor(scratch, ['a', 'b', 'evil'])
    const logA = recordingLogger()
    const netA = await libp2pNetwork({ privateKey: scratch.path('a.key'), peers: [{ site: 'b', peerId: ids['b'] }], logger: logA })
    const evil = await libp2pNetwork({ privateKey: scratch.path('evil.key'), peers: [{ site: 'a', addrs: netA.addrs }], dialIntervalMs: 50, maxDialIntervalMs: 100 })
    nets.push(netA, evil)
    const ha = new RecordingHandler()
    const he = new RecordingHandler()
    await netA.start('a', ha)
    await evil.start('b', he) // even claiming to be site b does not help: the PeerId decides
    await waitFor(() => logA.lines.some((l) => l.msg?.includes('not in the allow-list') === true), 10_000, 'gater log')
    await sleep(500)
    expect(ha.ups + he.ups).toBe(0)
    expect(evil.send('a', enc('x'))).toBe(false)
    expect(ha.totalFrames() + he.totalFrames()).toBe(0)
  })

  it('refuses a peer with a different swarm key', async () => {
    await writeSwarmKeyFile(scratch.path('swarm1.key'))
    await writeSwarmKeyFile(scratch.path('swarm2.key'))
    const { netA, netB } = await pair(scratch, { a: { psk: scratch.path('swarm1.key') }, b: { psk: scratch.path('swarm2.key') } })
    nets.push(netA, netB)
    const ha = new RecordingHandler()
    const hb = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('b', hb)
    await sleep(1500)
    expect(ha.ups + hb.ups).toBe(0)
    expect(netB.connected('a')).toBe(false)
  })

  it('connects with the same swarm key', async () => {
    await writeSwarmKeyFile(scratch.path('swarm.key'))
    const { netA, netB } = await pair(scratch, { a: { psk: scratch.path('swarm.key') }, b: { psk: scratch.path('swarm.key') } })
    nets.push(netA, netB)
    const ha = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('b', new RecordingHandler())
    await waitFor(() => netB.connected('a'), 10_000, 'psk connection')
    netB.send('a', enc('secret'))
    await waitFor(() => ha.totalFrames() === 1, 5000, 'frame')
    await writeFile(scratch.path('bad.key'), 'not a key')
    await expect(libp2pNetwork({ psk: scratch.path('bad.key') })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })

  it('a site id mismatch in the hello is refused and logged', async () => {
    const ids = await keysFor(scratch, ['a', 'b'])
    const logA = recordingLogger()
    const netA = await libp2pNetwork({ privateKey: scratch.path('a.key'), peers: [{ site: 'b', peerId: ids['b'] }], logger: logA })
    const netB = await libp2pNetwork({ privateKey: scratch.path('b.key'), peers: [{ site: 'a', addrs: netA.addrs }], dialIntervalMs: 100 })
    nets.push(netA, netB)
    const ha = new RecordingHandler()
    const hb = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('bee', hb) // configured at a as "b"
    await waitFor(() => logA.lines.some((l) => l.msg?.includes('protocol error') === true), 10_000, 'mismatch log')
    expect(ha.ups).toBe(0)
  })

  it('latency option delays delivery, preserving order', async () => {
    const { netA, netB } = await pair(scratch, { a: { latencyMs: { b: 150 } } })
    nets.push(netA, netB)
    const hb = new RecordingHandler()
    await netA.start('a', new RecordingHandler())
    await netB.start('b', hb)
    await waitFor(() => netA.connected('b'), 10_000, 'connection')
    const t0 = performance.now()
    for (let i = 0; i < 20; i++) netA.send('b', enc(String(i)))
    await waitFor(() => hb.framesFrom('a').length === 20, 5000, 'delayed frames')
    const elapsed = performance.now() - t0
    expect(elapsed).toBeGreaterThanOrEqual(140)
    expect(hb.framesFrom('a').map(dec)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
  })

  it('emulated latency follows the injected clock, not the wall clock', async () => {
    let nowMs = 1_000
    const clock = { nowMs: () => nowMs }
    const { netA, netB } = await pair(scratch, { a: { latencyMs: { b: 100 }, clock } })
    nets.push(netA, netB)
    const hb = new RecordingHandler()
    await netA.start('a', new RecordingHandler())
    await netB.start('b', hb)
    await waitFor(() => netA.connected('b') && netB.connected('a'), 10_000, 'connection')
    for (let i = 0; i < 5; i++) netA.send('b', enc(String(i)))
    // Real time passes, the injected clock does not: the frames stay queued.
    await sleep(400)
    expect(hb.framesFrom('a').length).toBe(0)
    nowMs += 100
    await waitFor(() => hb.framesFrom('a').length === 5, 5000, 'frames once the clock moved')
    expect(hb.framesFrom('a').map(dec)).toEqual(['0', '1', '2', '3', '4'])
    await expect(libp2pNetwork({ clock: {} as never })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })

  it('backpressure: send returns false above high water, then drain', async () => {
    const { netA, netB } = await pair(scratch, { a: { highWaterBytes: 64 * 1024, latencyMs: 50 } })
    nets.push(netA, netB)
    const ha = new RecordingHandler()
    const hb = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('b', hb)
    await waitFor(() => netA.connected('b'), 10_000, 'connection')
    const chunk = new Uint8Array(16 * 1024).fill(7)
    let sent = 0
    while (netA.send('b', chunk)) sent++
    sent++ // the frame that returned false is still queued
    expect(sent).toBeLessThan(10)
    await waitFor(() => ha.drains.length === 1, 5000, 'drain')
    await waitFor(() => hb.framesFrom('a').length === sent, 5000, 'all frames')
    expect(ha.drains.length).toBe(1)
  })

  it('backpressure without latency: a burst over high water returns false, drains, and arrives in order', async () => {
    const { netA, netB } = await pair(scratch, { a: { highWaterBytes: 256 * 1024 } })
    nets.push(netA, netB)
    const ha = new RecordingHandler()
    const hb = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('b', hb)
    await waitFor(() => netA.connected('b'), 10_000, 'connection')
    const total = 2000
    let i = 0
    let refusals = 0
    const frame = (n: number): Uint8Array => { const f = new Uint8Array(1024); new DataView(f.buffer).setUint32(0, n); return f }
    // Engine-like loop: send until refused, then wait for drain.
    while (i < total) {
      const ok = netA.send('b', frame(i++))
      if (!ok) {
        refusals++
        const before = ha.drains.length
        await waitFor(() => ha.drains.length > before, 5000, 'drain')
      }
    }
    await waitFor(() => hb.framesFrom('a').length === total, 10_000, 'all frames')
    expect(refusals).toBeGreaterThan(0)
    expect(ha.drains.length).toBe(refusals)
    hb.framesFrom('a').forEach((f, n) => expect(new DataView(f.buffer, f.byteOffset).getUint32(0)).toBe(n))
  })

  it('simultaneous dials from both sides settle on one stream, consistently on both ends', async () => {
    const ids = await keysFor(scratch, ['a', 'b'])
    const addrs: Record<string, string> = {}
    for (const s of ['a', 'b']) {
      const probe = await libp2pNetwork({ privateKey: scratch.path(`${s}.key`) })
      addrs[s] = probe.addrs[0]!
      await probe.stop()
    }
    let dedupes = 0
    for (let round = 0; round < 4; round++) {
      const logs = [recordingLogger(), recordingLogger()]
      const mk = (s: string, o: string, log: ReturnType<typeof recordingLogger>) => libp2pNetwork({
        privateKey: scratch.path(`${s}.key`),
        listen: [addrs[s]!.replace(/\/p2p\/.*$/, '')],
        peers: [{ site: o, addrs: [addrs[o]!] }],
        // 1 ms: the higher PeerId barely waits, so both dial at once.
        dialIntervalMs: 1,
        maxDialIntervalMs: 50,
        logger: log,
      })
      const netA = await mk('a', 'b', logs[0]!)
      const netB = await mk('b', 'a', logs[1]!)
      const ha = new RecordingHandler()
      const hb = new RecordingHandler()
      await Promise.all([netA.start('a', ha), netB.start('b', hb)])
      await waitFor(() => netA.connected('b') && netB.connected('a'), 10_000, 'connection')
      await sleep(200)
      for (let i = 0; i < 50; i++) { netA.send('b', enc(`a${i}`)); netB.send('a', enc(`b${i}`)) }
      await waitFor(() => ha.totalFrames() === 50 && hb.totalFrames() === 50, 5000, 'frames')
      expect(hb.framesFrom('a').map(dec)).toEqual(Array.from({ length: 50 }, (_, i) => `a${i}`))
      for (const h of [ha, hb]) {
        h.events.forEach((e, i) => expect(e.startsWith(i % 2 === 0 ? 'up' : 'down')).toBe(true))
        expect(h.events.at(-1)?.startsWith('up')).toBe(true)
      }
      dedupes += logs.flatMap((l) => l.lines).filter((l) => /duplicate|replaced/.test(l.msg ?? '')).length
      await Promise.all([netA.stop(), netB.stop()])
    }
    expect(ids['a']).toBeDefined()
    // Not asserted > 0: whether both dials race is up to the scheduler; the invariants above are.
    console.info(`simultaneous-dial rounds: ${dedupes} dedupe decisions`)
  })

  it('validates per-site latency and dial options', async () => {
    const ids = await keysFor(scratch, ['b'])
    await expect(libp2pNetwork({ peers: [{ site: 'b', peerId: ids['b'] }], latencyMs: { c: 5 } })).rejects.toThrow(/unknown peer site "c"/)
    await expect(libp2pNetwork({ peers: [{ site: 'b', peerId: ids['b'] }], latencyMs: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    await expect(libp2pNetwork({ dialIntervalMs: 100, maxDialIntervalMs: 10 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    await expect(libp2pNetwork({ peers: [{ site: 'b', peerId: ids['b'] }, { site: 'c', peerId: ids['b'] }] })).rejects.toThrow(/two sites/)
    const eph = await libp2pNetwork({})
    nets.push(eph)
    expect(eph.peerId).toMatch(/^12D3KooW/)
    await expect(eph.start('b', new RecordingHandler())).resolves.toBeUndefined()
    await expect(eph.start('b', new RecordingHandler())).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })

  it('a node without the swarm key cannot reach one that has it', async () => {
    await writeSwarmKeyFile(scratch.path('swarm.key'))
    const { netA, netB } = await pair(scratch, { a: { psk: scratch.path('swarm.key') } })
    nets.push(netA, netB)
    const ha = new RecordingHandler()
    const hb = new RecordingHandler()
    await netA.start('a', ha)
    await netB.start('b', hb)
    await sleep(1500)
    expect(ha.ups + hb.ups).toBe(0)
  })

  it('stop is idempotent and clears timers', async () => {
    const ids = await keysFor(scratch, ['a', 'b'])
    // b is never started: a keeps dialing a dead address until stop().
    const net = await libp2pNetwork({ privateKey: scratch.path('a.key'), peers: [{ site: 'b', addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${ids['b']}`] }], dialIntervalMs: 10, maxDialIntervalMs: 20 })
    await net.start('a', new RecordingHandler())
    await sleep(100)
    await Promise.all([net.stop(), net.stop()])
    await net.stop()
    await expect(net.start('a', new RecordingHandler())).rejects.toMatchObject({ code: 'CLOSED' })
  })
})
