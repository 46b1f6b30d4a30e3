import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { CausewayError } from '@causeway/core'
import { createRandom, createSimNetwork, type SimNetwork } from '../src/index.js'
import { bytesOf, fakeHandler, ticks } from './helpers.js'

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(CausewayError)
    return (e as CausewayError).code
  }
  return undefined
}

async function asyncCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(CausewayError)
    return (e as CausewayError).code
  }
  return undefined
}

let nets: SimNetwork[] = []
function net(options?: Parameters<typeof createSimNetwork>[0]): SimNetwork {
  const n = createSimNetwork(options)
  nets.push(n)
  return n
}

/** Starts sites with fake handlers; peers by site (undefined = default topology). */
async function sites(n: SimNetwork, ...ids: string[]) {
  const out: Record<string, ReturnType<typeof fakeHandler> & { adapter: ReturnType<SimNetwork['adapter']> }> = {}
  for (const id of ids) {
    const f = fakeHandler()
    const adapter = n.adapter(id)
    await adapter.start(id, f.handler)
    out[id] = Object.assign(f, { adapter }) // same object: tests mutate f.progress
  }
  await ticks()
  return out
}

afterEach(async () => {
  for (const n of nets) await n.close()
  nets = []
  vi.useRealTimers()
})

describe('options', () => {
  it('rejects bad network options with INVALID_OPTIONS', () => {
    const bad: unknown[] = [
      null,
      { latencyMs: -1 },
      { latencyMs: Number.NaN },
      { latencyMs: Infinity },
      { latencyMs: '5' },
      { jitterMs: -1 },
      { seed: Infinity },
      { seed: 'x' },
      { highWaterBytes: 0 },
      { highWaterBytes: 1.5 },
      { highWaterBytes: 100, maxQueuedBytes: 50 },
      { settleTimeoutMs: -5 },
      { settlePollMs: 0 },
      { clock: {} },
    ]
    for (const o of bad) expect(code(() => createSimNetwork(o as never)), JSON.stringify(o)).toBe('INVALID_OPTIONS')
    expect(code(() => createSimNetwork({ latencyMs: () => 1, jitterMs: 3, seed: 1 }))).toBeUndefined()
  })

  it('rejects bad adapter options and bad start calls with INVALID_OPTIONS', async () => {
    const n = net()
    expect(code(() => n.adapter('Bad Id'))).toBe('INVALID_OPTIONS')
    expect(code(() => n.adapter(''))).toBe('INVALID_OPTIONS')
    expect(code(() => n.adapter('a', { peers: [{ site: 'a' }] }))).toBe('INVALID_OPTIONS')
    expect(code(() => n.adapter('a', { peers: [{ site: 'b' }, { site: 'b' }] }))).toBe('INVALID_OPTIONS')
    expect(code(() => n.adapter('a', { peers: [{ site: 'B!' }] }))).toBe('INVALID_OPTIONS')
    expect(code(() => n.adapter('a', { peers: [{ site: 'b', send: 'yes' as never }] }))).toBe('INVALID_OPTIONS')
    const a = n.adapter('a')
    expect(await asyncCode(a.start('b', fakeHandler().handler))).toBe('INVALID_OPTIONS')
    await a.start('a', fakeHandler().handler)
    expect(await asyncCode(a.start('a', fakeHandler().handler))).toBe('INVALID_OPTIONS')
    // A second live adapter for the same site is a configuration error.
    expect(code(() => n.adapter('a'))).toBe('INVALID_OPTIONS')
    expect(code(() => n.setLatency(-3))).toBe('INVALID_OPTIONS')
    expect(code(() => n.partition(['a'], ['a']))).toBe('INVALID_ARGUMENT')
  })

  it('a latency function returning garbage is reported as INVALID_OPTIONS', async () => {
    const n = net({ latencyMs: () => -1 })
    const s = await sites(n, 'a', 'b')
    expect(code(() => s.a!.adapter.send('b', bytesOf(1)))).toBe('INVALID_OPTIONS')
  })
})

describe('links and topology', () => {
  it('brings links up asynchronously on both sides, never inside start()', async () => {
    const n = net()
    const fa = fakeHandler()
    const fb = fakeHandler()
    const a = n.adapter('a')
    const b = n.adapter('b')
    await a.start('a', fa.handler)
    const started = b.start('b', fb.handler)
    expect(fa.events).toEqual([])
    expect(fb.events).toEqual([])
    await started
    await ticks()
    expect(fa.events).toEqual(['up:b'])
    expect(fb.events).toEqual(['up:a'])
    expect(a.connected('b')).toBe(true)
    expect(n.connected('a', 'b')).toBe(true)
    expect(a.peers()).toEqual([{ site: 'b', send: true, receive: true }])
  })

  it('default adapters see sites added later', async () => {
    const n = net()
    const s = await sites(n, 'a', 'b')
    expect(s.a!.adapter.peers().map((p) => p.site)).toEqual(['b'])
    const c = fakeHandler()
    const ca = n.adapter('c')
    expect(s.a!.adapter.peers().map((p) => p.site)).toEqual(['b', 'c'])
    await ca.start('c', c.handler)
    await ticks()
    expect(c.events.sort()).toEqual(['up:a', 'up:b'])
    expect(s.a!.events).toEqual(['up:b', 'up:c'])
  })

  it('explicit peer lists: a link needs both sides to allow it', async () => {
    const n = net()
    const fa = fakeHandler()
    const fb = fakeHandler()
    const fc = fakeHandler()
    const a = n.adapter('a', { peers: [{ site: 'b' }] })
    const b = n.adapter('b')
    const c = n.adapter('c')
    await a.start('a', fa.handler)
    await b.start('b', fb.handler)
    await c.start('c', fc.handler)
    await ticks()
    expect(a.peers()).toEqual([{ site: 'b', send: true, receive: true }])
    expect(a.connected('c')).toBe(false)
    expect(c.connected('a')).toBe(false)
    expect(c.connected('b')).toBe(true)
    // c's default list leaves out a, which does not allow c: no queue for an unreachable peer.
    expect(c.peers().map((p) => p.site)).toEqual(['b'])
    expect(fa.events).toEqual(['up:b'])
    expect(fc.events).toEqual(['up:b'])
    expect(a.send('c', bytesOf(1))).toBe(false)
  })

  it('reports one-way configuration but carries frames both ways', async () => {
    const n = net()
    const fb = fakeHandler()
    const fc = fakeHandler()
    const b = n.adapter('b')
    const c = n.adapter('c', { peers: [{ site: 'b', send: true, receive: false }] })
    await b.start('b', fb.handler)
    await c.start('c', fc.handler)
    await ticks()
    expect(c.peers()).toEqual([{ site: 'b', send: true, receive: false }])
    expect(b.peers()).toEqual([{ site: 'c', send: true, receive: true }])
    expect(b.send('c', bytesOf(7))).toBe(true)
    expect(c.send('b', bytesOf(8))).toBe(true)
    await vi.waitFor(() => expect(fc.frames.length + fb.frames.length).toBe(2))
    expect(fc.frames[0]!.bytes).toEqual(bytesOf(7))
    expect(fb.frames[0]!.bytes).toEqual(bytesOf(8))
  })

  it('partition drops frames in flight, emits peerDown, heal emits peerUp; unnamed sites stay connected', async () => {
    const n = net({ latencyMs: 50 })
    const s = await sites(n, 'a', 'b', 'c', 'd')
    for (const id of ['a', 'b', 'c', 'd']) s[id]!.events.length = 0
    expect(s.a!.adapter.send('b', bytesOf(1))).toBe(true)
    n.partition(['a'], ['b', 'c'])
    expect(n.stats().dropped.frames).toBe(1)
    expect(s.a!.adapter.connected('b')).toBe(false)
    expect(s.a!.adapter.send('b', bytesOf(2))).toBe(false)
    await ticks()
    expect(s.a!.events.sort()).toEqual(['down:b', 'down:c'])
    expect(s.b!.events).toEqual(['down:a'])
    expect(s.c!.events).toEqual(['down:a'])
    expect(s.d!.events).toEqual([])
    expect(n.connected('b', 'c')).toBe(true)
    expect(n.connected('a', 'd')).toBe(true)
    expect(n.connected('b', 'd')).toBe(true)
    await new Promise((r) => setTimeout(r, 80))
    expect(s.b!.frames).toEqual([])
    n.heal()
    await ticks()
    expect(s.a!.events.sort()).toEqual(['down:b', 'down:c', 'up:b', 'up:c'])
    expect(s.b!.events).toEqual(['down:a', 'up:a'])
    expect(n.connected('a', 'b')).toBe(true)
  })

  it('cut and restore affect a single link', async () => {
    const n = net()
    const s = await sites(n, 'a', 'b', 'c')
    n.cut('a', 'b')
    await ticks()
    expect(n.connected('a', 'b')).toBe(false)
    expect(n.connected('a', 'c')).toBe(true)
    expect(s.b!.events).toEqual(['up:a', 'up:c', 'down:a'])
    n.restore('b', 'a')
    await ticks()
    expect(n.connected('a', 'b')).toBe(true)
    expect(s.b!.events).toEqual(['up:a', 'up:c', 'down:a', 'up:a'])
    // A cut outlives a partition change, heal() clears both.
    n.cut('a', 'c')
    n.partition(['a', 'c'], ['b'])
    expect(n.connected('a', 'c')).toBe(false)
    n.heal()
    expect(n.connected('a', 'c')).toBe(true)
    expect(n.connected('a', 'b')).toBe(true)
  })

  it('stop takes the site down; the same id can restart', async () => {
    const n = net({ latencyMs: 20 })
    const s = await sites(n, 'a', 'b')
    s.a!.adapter.send('b', bytesOf(1))
    await s.b!.adapter.stop()
    await s.b!.adapter.stop() // idempotent
    await ticks()
    expect(s.a!.events).toEqual(['up:b', 'down:b'])
    expect(s.b!.events).toEqual(['up:a'])
    expect(s.a!.adapter.connected('b')).toBe(false)
    expect(s.a!.adapter.peers().map((p) => p.site)).toEqual(['b']) // still configured: it may return
    const fb2 = fakeHandler()
    const b2 = n.adapter('b')
    await b2.start('b', fb2.handler)
    await ticks()
    expect(fb2.events).toEqual(['up:a'])
    expect(s.a!.events).toEqual(['up:b', 'down:b', 'up:b'])
    await new Promise((r) => setTimeout(r, 40))
    expect(fb2.frames).toEqual([]) // the frame sent before the restart was lost
    expect(s.b!.frames).toEqual([])
    expect(s.a!.adapter.send('b', bytesOf(2))).toBe(true)
    await vi.waitFor(() => expect(fb2.frames.length).toBe(1))
  })
})

describe('frames', () => {
  it('copies bytes and never delivers synchronously', async () => {
    const n = net()
    const s = await sites(n, 'a', 'b')
    const buf = bytesOf(1, 2, 3)
    expect(s.a!.adapter.send('b', buf)).toBe(true)
    buf[0] = 99
    expect(s.b!.frames).toEqual([])
    await vi.waitFor(() => expect(s.b!.frames.length).toBe(1))
    expect(s.b!.frames[0]!.bytes).toEqual(bytesOf(1, 2, 3))
    expect(s.b!.frames[0]!.bytes.buffer).not.toBe(buf.buffer)
    expect(s.b!.frames[0]!.peer).toBe('a')
  })

  it('honours latency (fake timers)', async () => {
    vi.useFakeTimers()
    const n = net({ latencyMs: (from) => (from === 'a' ? 100 : 10) })
    const s = await sites(n, 'a', 'b')
    s.a!.adapter.send('b', bytesOf(1))
    s.b!.adapter.send('a', bytesOf(2))
    await vi.advanceTimersByTimeAsync(50)
    expect(s.a!.frames.length).toBe(1)
    expect(s.b!.frames.length).toBe(0)
    await vi.advanceTimersByTimeAsync(45)
    expect(s.b!.frames.length).toBe(0)
    await vi.advanceTimersByTimeAsync(10)
    expect(s.b!.frames.length).toBe(1)
    n.setLatency('a', 'b', 5)
    s.a!.adapter.send('b', bytesOf(3))
    await vi.advanceTimersByTimeAsync(6)
    expect(s.b!.frames.length).toBe(2)
  })

  it('keeps FIFO order per direction under jitter', async () => {
    vi.useFakeTimers()
    const n = net({ latencyMs: 10, jitterMs: 200, seed: 42 })
    const s = await sites(n, 'a', 'b', 'c')
    for (let i = 0; i < 2000; i++) {
      s.a!.adapter.send('b', new Uint8Array(new Uint32Array([i]).buffer))
      s.c!.adapter.send('b', new Uint8Array(new Uint32Array([i]).buffer))
      if (i % 100 === 0) await vi.advanceTimersByTimeAsync(7)
    }
    await vi.advanceTimersByTimeAsync(1000)
    const seq = (peer: string) => s.b!.frames.filter((f) => f.peer === peer).map((f) => new Uint32Array(f.bytes.buffer)[0])
    const want = Array.from({ length: 2000 }, (_, i) => i)
    expect(seq('a')).toEqual(want)
    expect(seq('c')).toEqual(want)
    expect(n.inFlight()).toBe(0)
  })

  it('backpressure: send returns false above high water, drain below half', async () => {
    vi.useFakeTimers()
    const n = net({ latencyMs: 10, highWaterBytes: 100 })
    const s = await sites(n, 'a', 'b')
    const frame = new Uint8Array(60)
    expect(s.a!.adapter.send('b', frame)).toBe(true)
    expect(s.a!.adapter.send('b', frame)).toBe(false) // 120 > 100: queued anyway
    expect(s.a!.adapter.send('b', frame)).toBe(false)
    expect(s.a!.drains).toEqual([])
    await vi.advanceTimersByTimeAsync(20)
    expect(s.b!.frames.length).toBe(3)
    expect(s.a!.drains).toEqual(['b'])
    expect(s.a!.adapter.send('b', frame)).toBe(true)
  })

  it('resets a connection whose sender ignores backpressure', async () => {
    vi.useFakeTimers()
    const n = net({ latencyMs: 10, highWaterBytes: 100, maxQueuedBytes: 300 })
    const s = await sites(n, 'a', 'b')
    const frame = new Uint8Array(60)
    const results = Array.from({ length: 6 }, () => s.a!.adapter.send('b', frame))
    expect(results).toEqual([true, false, false, false, false, false])
    await vi.advanceTimersByTimeAsync(0)
    expect(s.a!.events).toEqual(['up:b', 'down:b', 'up:b'])
    await vi.advanceTimersByTimeAsync(50)
    expect(s.b!.frames.length).toBe(0)
    expect(n.stats().dropped.frames).toBe(6)
    // API.md: frames/bytes count deliveries; the dropped frames were only sent.
    expect(n.stats().frames).toBe(0)
    expect(n.stats().sent.frames).toBe(6)
  })

  it('counts frames and bytes per link', async () => {
    const n = net()
    const s = await sites(n, 'a', 'b')
    s.a!.adapter.send('b', new Uint8Array(10))
    s.a!.adapter.send('b', new Uint8Array(5))
    s.b!.adapter.send('a', new Uint8Array(1))
    await vi.waitFor(() => expect(n.stats().delivered.frames).toBe(3))
    const st = n.stats()
    expect(st.frames).toBe(3)
    expect(st.bytes).toBe(16)
    expect(st.perLink).toEqual({ 'a->b': { frames: 2, bytes: 15 }, 'b->a': { frames: 1, bytes: 1 } })
    n.resetStats()
    expect(n.stats().frames).toBe(0)
  })

  it('handles tens of thousands of frames quickly', async () => {
    const n = net({ jitterMs: 1 })
    const s = await sites(n, 'a', 'b')
    const frame = new Uint8Array(32)
    const total = 50_000
    for (let i = 0; i < total; i++) s.a!.adapter.send('b', frame)
    await vi.waitFor(() => expect(s.b!.frames.length).toBe(total), { timeout: 10_000 })
  })

  it('a throwing handler is reported, and the link keeps working', async () => {
    const errors: unknown[] = []
    const n = net({ onHandlerError: (e) => errors.push(e) })
    const fa = fakeHandler()
    const fb = fakeHandler()
    let first = true
    fb.handler.frame = (peer, bytes) => {
      if (first) {
        first = false
        throw new Error('boom')
      }
      fb.frames.push({ peer, bytes })
    }
    const a = n.adapter('a')
    await a.start('a', fa.handler)
    await n.adapter('b').start('b', fb.handler)
    await ticks()
    expect(a.send('b', bytesOf(1))).toBe(true)
    expect(a.send('b', bytesOf(2))).toBe(true)
    await vi.waitFor(() => expect(fb.frames.length).toBe(1))
    expect(fb.frames[0]!.bytes).toEqual(bytesOf(2))
    expect(errors.length).toBe(1)
  })
})

describe('settle', () => {
  it('resolves when everything is idle and caught up', async () => {
    const n = net({ latencyMs: 1 })
    const s = await sites(n, 'a', 'b')
    s.a!.progress = { received: { 'a/0': 3 }, applied: { 'a/0': 3 }, idle: true }
    s.b!.progress = { received: { 'a/0': 3 }, applied: { 'a/0': 3 }, idle: true }
    await n.settle(1000)
  })

  it('waits for a lagging site, then resolves', async () => {
    const n = net()
    const s = await sites(n, 'a', 'b')
    s.a!.progress = { received: {}, applied: { 'a/0': 3, 'a/1': 1 }, idle: true }
    s.b!.progress = { received: {}, applied: { 'a/0': 2 }, idle: true }
    let done = false
    const p = n.settle(5000).then(() => (done = true))
    await new Promise((r) => setTimeout(r, 30))
    expect(done).toBe(false)
    s.b!.progress = { received: {}, applied: { 'a/0': 3, 'a/1': 1 }, idle: true }
    await p
    expect(done).toBe(true)
  })

  it('rejects with TIMEOUT naming the lagging site and stream', async () => {
    const n = net()
    const s = await sites(n, 'a', 'b')
    s.a!.progress = { received: {}, applied: { 'a/0': 3 }, idle: true }
    s.b!.progress = { received: {}, applied: {}, idle: true }
    const err = await n.settle(40).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CausewayError)
    expect((err as CausewayError).code).toBe('TIMEOUT')
    expect((err as CausewayError).message).toContain('a/0')
  })

  it('waits for busy sites, but not for control frames in flight (heartbeats outlive short waits)', async () => {
    const n = net({ latencyMs: 30 })
    const s = await sites(n, 'a', 'b')
    s.a!.progress = { received: {}, applied: {}, idle: false }
    expect(await asyncCode(n.settle(20))).toBe('TIMEOUT')
    s.a!.progress = { received: {}, applied: {}, idle: true }
    s.a!.adapter.send('b', bytesOf(1))
    // Progress is converged, so the frame in flight (a heartbeat, say) does not hold settle up.
    await n.settle(1000)
    expect(s.b!.frames.length).toBe(0)
  })

  it('only compares sites that can reach each other (directed, through relays)', async () => {
    const n = net()
    const fa = fakeHandler()
    const fb = fakeHandler()
    const fc = fakeHandler()
    // a -> b one way (b does not send to a); c talks to b only.
    await n.adapter('a', { peers: [{ site: 'b', send: true, receive: true }, { site: 'c' }] }).start('a', fa.handler)
    await n.adapter('b', { peers: [{ site: 'a', send: false }, { site: 'c' }] }).start('b', fb.handler)
    await n.adapter('c', { peers: [{ site: 'b' }] }).start('c', fc.handler)
    await ticks()
    fb.progress = { received: {}, applied: { 'b/0': 5 }, idle: true }
    fc.progress = { received: {}, applied: { 'b/0': 5 }, idle: true }
    await n.settle(500) // a cannot receive b's writes: it is not required to have them
    fa.progress = { received: {}, applied: { 'a/0': 2 }, idle: true }
    const err = await n.settle(40).catch((e: unknown) => e as CausewayError)
    expect(err.code).toBe('TIMEOUT')
    expect(err.message).toMatch(/site (b|c) lags site a/)
    fb.progress = { received: {}, applied: { 'b/0': 5, 'a/0': 2 }, idle: true }
    // c reaches a's writes only through b: it must have them too.
    const err2 = await n.settle(40).catch((e: unknown) => e as CausewayError)
    expect(err2.message).toMatch(/site c lags site a on stream a\/0/)
    fc.progress = { received: {}, applied: { 'b/0': 5, 'a/0': 2 }, idle: true }
    await n.settle(500)
    // Partitioned sites are not compared.
    n.partition(['a'], ['b', 'c'])
    fa.progress = { received: {}, applied: { 'a/0': 9 }, idle: true }
    await n.settle(500)
  })

  it('close rejects pending settles with CLOSED and leaves no timers', async () => {
    vi.useFakeTimers()
    const n = net({ latencyMs: 100, jitterMs: 10 })
    const s = await sites(n, 'a', 'b')
    s.a!.progress = { received: {}, applied: { 'a/0': 1 }, idle: true }
    for (let i = 0; i < 10; i++) s.a!.adapter.send('b', bytesOf(i))
    const p = n.settle()
    await vi.advanceTimersByTimeAsync(10)
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    await n.close()
    expect(await asyncCode(p)).toBe('CLOSED')
    expect(vi.getTimerCount()).toBe(0)
    await ticks()
    expect(s.a!.events).toEqual(['up:b', 'down:b'])
    expect(s.a!.adapter.send('b', bytesOf(1))).toBe(false)
    expect(code(() => n.adapter('c'))).toBe('CLOSED')
    expect(await asyncCode(n.settle())).toBe('CLOSED')
    await n.close() // idempotent
    await s.a!.adapter.stop()
  })
})

describe('createRandom', () => {
  it('is deterministic and in [0, 1)', () => {
    const r1 = createRandom(7)
    const r2 = createRandom(7)
    const r3 = createRandom(8)
    const xs = Array.from({ length: 1000 }, () => r1())
    expect(Array.from({ length: 1000 }, () => r2())).toEqual(xs)
    expect(Array.from({ length: 1000 }, () => r3())).not.toEqual(xs)
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true)
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length
    expect(mean).toBeGreaterThan(0.4)
    expect(mean).toBeLessThan(0.6)
  })
})
