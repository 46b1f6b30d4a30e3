import { afterEach, describe, expect, it } from 'vitest'
import { isCausewayError } from '@causeway/core'
import type { NetworkAdapter } from '@causeway/core'
import { RecordingHandler, sleep, waitFor } from './handler.js'

/**
 * The NetworkAdapter contract (packages/core/src/network.ts), checked the same way over every
 * network (sim, libp2p) with the one RecordingHandler. Adapter-specific behaviour (partitions,
 * latency emulation, gaters, key files) stays in each package's own tests.
 *
 * Not checked because the adapters legitimately differ: whether a site that stops itself gets a
 * last peerDown (libp2p: yes, sim: no), and which error code start() after stop() rejects with.
 */

export interface PeerSpec {
  site: string
  send?: boolean
  receive?: boolean
}

export interface NetworkHarness {
  /**
   * The adapter of `site` (not started), allowing exactly `peers`. Called again for a site whose
   * previous adapter has stopped, it is that site restarting (same identity, same peers' view).
   */
  adapter(site: string, peers: PeerSpec[]): Promise<NetworkAdapter>
  /** Stop everything and release ports, files and timers. */
  close(): Promise<void>
}

export interface HarnessOptions {
  /** Per-peer outbound bytes above which send() returns false. */
  highWaterBytes?: number
  /** The frame cap, where the network has one (the sim has none). */
  maxFrameBytes?: number
}

export type MakeHarness = (options: HarnessOptions) => Promise<NetworkHarness>

/** Bounds every wait: loopback connections come up in well under a second. */
const WAIT_MS = 15_000
/** How long "nothing happens" is watched for. */
const QUIET_MS = 400

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

/** A frame whose bytes say who sent it and its sequence number, and whose size varies with it. */
function numbered(from: string, i: number): Uint8Array {
  const tag = enc(`${from}#${i}#`)
  const out = new Uint8Array(tag.length + (i * 37) % 3000)
  out.set(tag)
  for (let j = tag.length; j < out.length; j++) out[j] = (i + j) & 0xff
  return out
}

function checkNumbered(frames: Uint8Array[], from: string, count: number): void {
  expect(frames.length).toBe(count)
  for (let i = 0; i < count; i++) {
    const want = numbered(from, i)
    const got = frames[i]!
    // Compare cheaply but completely: a mismatch reports the first bad index.
    if (got.length !== want.length || !got.every((b, j) => b === want[j])) {
      expect(dec(got.subarray(0, 16)), `frame ${i} from ${from}`).toBe(dec(want.subarray(0, 16)))
      expect(got, `frame ${i} from ${from}`).toEqual(want)
    }
  }
}

/** Up and down strictly alternate, starting with up. */
function checkAlternating(events: string[]): void {
  events.forEach((e, i) => expect(e.startsWith(i % 2 === 0 ? 'up:' : 'down:'), `event ${i} of ${events.join(',')}`).toBe(true))
}

export function networkCompliance(name: string, makeHarness: MakeHarness): void {
  describe(`NetworkAdapter compliance: ${name}`, () => {
    let harness: NetworkHarness | undefined
    afterEach(async () => {
      await harness?.close()
      harness = undefined
    })
    const open = async (options: HarnessOptions = {}): Promise<NetworkHarness> => (harness = await makeHarness(options))

    /** Start `site` with a fresh handler. */
    async function site(h: NetworkHarness, id: string, peers: PeerSpec[]): Promise<{ net: NetworkAdapter; rec: RecordingHandler }> {
      const net = await h.adapter(id, peers)
      const rec = new RecordingHandler()
      await net.start(id, rec)
      return { net, rec }
    }

    it('start brings a connection up on both ends, with one peerUp each, never inside start()', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b' }])
      expect(a.net.connected('b')).toBe(false)
      const netB = await h.adapter('b', [{ site: 'a' }])
      const recB = new RecordingHandler()
      const started = netB.start('b', recB)
      expect(recB.events).toEqual([])
      await started
      await waitFor(() => a.net.connected('b') && netB.connected('a') && a.rec.ups === 1 && recB.ups === 1, WAIT_MS, 'connection')
      await sleep(QUIET_MS)
      expect(a.rec.events).toEqual(['up:b'])
      expect(recB.events).toEqual(['up:a'])
      expect(a.net.connected('nobody')).toBe(false)
    })

    it('a second start() is refused with INVALID_OPTIONS', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b' }])
      const err = await a.net.start('a', new RecordingHandler()).catch((e: unknown) => e)
      expect(isCausewayError(err, 'INVALID_OPTIONS')).toBe(true)
    })

    it('peers() lists the configured peers with their directions; a one-way peer still carries frames both ways', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b', send: true, receive: false }, { site: 'c', send: false, receive: true }])
      const b = await site(h, 'b', [{ site: 'a' }])
      expect(a.net.peers()).toEqual([{ site: 'b', send: true, receive: false }, { site: 'c', send: false, receive: true }])
      expect(b.net.peers()).toEqual([{ site: 'a', send: true, receive: true }])
      await waitFor(() => a.net.connected('b') && b.net.connected('a'), WAIT_MS, 'connection')
      // Directions are engine policy: control frames flow both ways regardless.
      expect(a.net.send('b', enc('a->b'))).toBe(true)
      expect(b.net.send('a', enc('b->a'))).toBe(true)
      await waitFor(() => a.rec.totalFrames() === 1 && b.rec.totalFrames() === 1, WAIT_MS, 'one-way frames')
      expect(b.rec.framesFrom('a').map(dec)).toEqual(['a->b'])
      expect(a.rec.framesFrom('b').map(dec)).toEqual(['b->a'])
    })

    it('frames arrive intact and in order on each connection, both ways, after peerUp', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b' }, { site: 'c' }])
      const b = await site(h, 'b', [{ site: 'a' }])
      const c = await site(h, 'c', [{ site: 'a' }])
      await waitFor(() => ['b', 'c'].every((s) => a.net.connected(s)) && b.net.connected('a') && c.net.connected('a'), WAIT_MS, 'connections')
      const n = 400
      for (let i = 0; i < n; i++) {
        // The caller may reuse its buffer once send() returns.
        const f = numbered('a', i)
        a.net.send('b', f)
        a.net.send('c', f)
        f.fill(0)
        b.net.send('a', numbered('b', i))
        c.net.send('a', numbered('c', i))
        if (i % 50 === 0) await sleep(1)
      }
      a.net.send('b', new Uint8Array(0))
      await waitFor(() => b.rec.totalFrames() === n + 1 && c.rec.totalFrames() === n && a.rec.totalFrames() === 2 * n, WAIT_MS, 'all frames')
      checkNumbered(b.rec.framesFrom('a').slice(0, n), 'a', n)
      expect(b.rec.framesFrom('a')[n]!.byteLength).toBe(0)
      checkNumbered(c.rec.framesFrom('a'), 'a', n)
      checkNumbered(a.rec.framesFrom('b'), 'b', n)
      checkNumbered(a.rec.framesFrom('c'), 'c', n)
      for (const r of [a.rec, b.rec, c.rec]) expect(r.downs).toBe(0)
    })

    it('send() returns false, and never throws, for an unknown, not yet connected or gone peer', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b' }])
      expect(a.net.send('nobody', enc('x'))).toBe(false)
      expect(a.net.send('b', enc('x'))).toBe(false) // b has not started
      const b = await site(h, 'b', [{ site: 'a' }])
      await waitFor(() => a.net.connected('b') && b.net.connected('a'), WAIT_MS, 'connection')
      await b.net.stop()
      await waitFor(() => a.rec.downs === 1, WAIT_MS, 'peerDown at a')
      expect(a.net.connected('b')).toBe(false)
      expect(a.net.send('b', enc('late'))).toBe(false)
      expect(b.net.send('a', enc('late'))).toBe(false)
      expect(a.rec.eventsOf('b')).toEqual(['up:b', 'down:b'])
    })

    it('backpressure: over high water send() returns false but keeps the frame; drain() follows; nothing is lost or reordered', async () => {
      const highWaterBytes = 64 * 1024
      const h = await open({ highWaterBytes })
      const a = await site(h, 'a', [{ site: 'b' }])
      const b = await site(h, 'b', [{ site: 'a' }])
      await waitFor(() => a.net.connected('b') && b.net.connected('a'), WAIT_MS, 'connection')
      // One synchronous burst: it must hit high water within a few frames.
      const chunk = 16 * 1024
      let sent = 0
      let accepted = true
      while (accepted && sent < 1000) {
        const f = new Uint8Array(chunk)
        new DataView(f.buffer).setUint32(0, sent)
        accepted = a.net.send('b', f)
        sent++
      }
      expect(accepted).toBe(false)
      expect(sent * chunk).toBeLessThanOrEqual(highWaterBytes + 2 * chunk)
      await waitFor(() => a.rec.drains.length === 1, WAIT_MS, 'drain')
      expect(a.rec.drains).toEqual(['b'])
      // Then an engine-like sender: send until refused, wait for drain, go on.
      const total = 1500
      let refusals = 0
      for (let i = 0; i < total; i++) {
        const f = new Uint8Array(1024)
        new DataView(f.buffer).setUint32(0, sent + i)
        if (!a.net.send('b', f)) {
          refusals++
          const before = a.rec.drains.length
          await waitFor(() => a.rec.drains.length > before, WAIT_MS, 'drain')
        }
      }
      await waitFor(() => b.rec.totalFrames() === sent + total, WAIT_MS, 'all frames')
      expect(refusals).toBeGreaterThan(0)
      expect(a.rec.drains.length).toBe(1 + refusals)
      b.rec.framesFrom('a').forEach((f, i) => expect(new DataView(f.buffer, f.byteOffset).getUint32(0)).toBe(i))
    })

    it('maxFrameBytes: a frame of the largest size arrives intact; a bigger one is refused and the connection stays usable', async () => {
      const h = await open({ maxFrameBytes: 256 * 1024, highWaterBytes: 4 * 1024 * 1024 })
      const a = await site(h, 'a', [{ site: 'b' }])
      const b = await site(h, 'b', [{ site: 'a' }])
      await waitFor(() => a.net.connected('b') && b.net.connected('a'), WAIT_MS, 'connection')
      const max = a.net.maxFrameBytes
      // Without a cap any size goes: 1 MiB stands for "large".
      const size = max ?? 1024 * 1024
      const big = new Uint8Array(size)
      for (let i = 0; i < size; i++) big[i] = (i * 7) & 0xff
      a.net.send('b', big)
      if (max !== undefined) {
        let refused = false
        try {
          refused = !a.net.send('b', new Uint8Array(max + 1))
        } catch (err) {
          refused = isCausewayError(err, 'INVALID_FRAME')
        }
        expect(refused).toBe(true)
      }
      a.net.send('b', enc('after'))
      await waitFor(() => b.rec.totalFrames() === 2, WAIT_MS, 'frames')
      const [got, after] = b.rec.framesFrom('a')
      expect(got!.byteLength).toBe(size)
      expect(got!.every((x, i) => x === ((i * 7) & 0xff))).toBe(true)
      expect(dec(after!)).toBe('after')
      expect(a.rec.downs + b.rec.downs).toBe(0)
    })

    it('stop() is idempotent; afterwards nothing is delivered to the stopped site and the peer sees peerDown', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b' }])
      const b = await site(h, 'b', [{ site: 'a' }])
      await waitFor(() => a.net.connected('b') && b.net.connected('a'), WAIT_MS, 'connection')
      await Promise.all([a.net.stop(), a.net.stop()])
      await a.net.stop()
      await waitFor(() => b.rec.downs === 1, WAIT_MS, 'peerDown at b')
      const seen = a.rec.events.length
      const framesSeen = a.rec.totalFrames()
      expect(b.net.send('a', enc('to a stopped site'))).toBe(false)
      expect(a.net.send('b', enc('from a stopped site'))).toBe(false)
      expect(a.net.connected('b')).toBe(false)
      await sleep(QUIET_MS)
      expect(a.rec.events.length).toBe(seen)
      expect(a.rec.totalFrames()).toBe(framesSeen)
      expect(b.rec.totalFrames()).toBe(0)
      const err = await a.net.start('a', new RecordingHandler()).catch((e: unknown) => e)
      expect(isCausewayError(err)).toBe(true)
    })

    it('reconnects after the peer restarts, and up/down alternate through repeated restarts', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b' }])
      let b = await site(h, 'b', [{ site: 'a' }])
      await waitFor(() => a.net.connected('b') && b.net.connected('a'), WAIT_MS, 'first connection')
      for (let round = 1; round <= 3; round++) {
        await b.net.stop()
        await waitFor(() => !a.net.connected('b') && a.rec.downs === round, WAIT_MS, `peerDown ${round}`)
        b = await site(h, 'b', [{ site: 'a' }])
        await waitFor(() => a.net.connected('b') && b.net.connected('a') && a.rec.ups === round + 1, WAIT_MS, `reconnection ${round}`)
        expect(b.rec.events).toEqual(['up:a'])
        expect(a.net.send('b', enc(`hello ${round}`))).toBe(true)
        expect(b.net.send('a', enc(`back ${round}`))).toBe(true)
        await waitFor(() => b.rec.totalFrames() === 1 && a.rec.framesFrom('b').length === round, WAIT_MS, `frames after restart ${round}`)
        expect(dec(b.rec.framesFrom('a')[0]!)).toBe(`hello ${round}`)
      }
      checkAlternating(a.rec.eventsOf('b'))
      expect(a.rec.eventsOf('b')).toEqual(['up:b', 'down:b', 'up:b', 'down:b', 'up:b', 'down:b', 'up:b'])
      expect(a.rec.framesFrom('b').map(dec)).toEqual(['back 1', 'back 2', 'back 3'])
    })

    it('a site that is not on the allow-list never gets a connection', async () => {
      const h = await open()
      const a = await site(h, 'a', [{ site: 'b' }])
      const c = await site(h, 'c', [{ site: 'a' }]) // c wants a; a does not list c
      const b = await site(h, 'b', [{ site: 'a' }])
      await waitFor(() => a.net.connected('b') && b.net.connected('a'), WAIT_MS, 'allowed connection')
      await sleep(QUIET_MS)
      expect(c.net.connected('a')).toBe(false)
      expect(a.net.connected('c')).toBe(false)
      expect(c.net.send('a', enc('x'))).toBe(false)
      expect(c.rec.events).toEqual([])
      expect(a.rec.events).toEqual(['up:b'])
    })
  })
}
