import { afterEach, describe, expect, it } from 'vitest'
import { CausewayError, encodeEntry, encodeFrame, openSite, PROTOCOL_VERSION, type NetworkAdapter, type Value } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import { cluster, eventually } from './helpers.js'

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c()
})
async function mk(...args: Parameters<typeof cluster>) {
  const c = await cluster(...args)
  cleanup.push(() => c.close())
  return c
}

describe('replication on the simulated network', () => {
  it('a write at one site appears at the others', async () => {
    const { sites, net } = await mk(['a', 'b', 'c'], { net: { latencyMs: 20, jitterMs: 5, seed: 1 } })
    const v = await sites.a!.session().put('vm/1', { state: 'building' })
    await net.settle()
    for (const id of ['b', 'c']) expect(await sites[id]!.session().get('vm/1')).toEqual({ key: 'vm/1', value: { state: 'building' }, version: v })
  })

  it('causal order: a remote site never shows an effect without its cause', async () => {
    // Slow direct link a->c, fast path a->b->c: c hears about the effect first through b.
    const { sites, net } = await mk(['a', 'b', 'c'], { net: { latencyMs: (f, t) => (f === 'a' && t === 'c' ? 300 : 5), seed: 2 } })
    // Let every link come up and c's upstream list reach b, so b stops relaying a's writes to c
    // (c hears a directly): the effect then overtakes its cause on the way to c.
    await eventually(() => ['a', 'b', 'c'].every((id) => sites[id]!.status().peers.every((p) => p.state === 'connected')), 5000, 'mesh up')
    await new Promise((r) => setTimeout(r, 400))
    const sa = sites.a!.session()
    await sa.put('photo', 'private photo')
    // b reads the photo and then writes a comment depending on it.
    const sb = sites.b!.session()
    await eventually(async () => (await sb.get('photo'))?.value === 'private photo')
    await sb.put('comment', 'nice photo')
    // At c: whenever the comment is visible, the photo must be visible too.
    const seen = await eventually(async () => {
      const sc = sites.c!.session()
      const comment = await sc.get('comment')
      if (!comment) return false
      return (await sc.get('photo')) ?? 'missing'
    }, 10_000, 'comment at c')
    expect(seen).not.toBe('missing')
    await net.settle()
  })

  it('every site stays writable during a partition and converges after heal', async () => {
    const { sites, net } = await mk(['a', 'b', 'c'], { net: { latencyMs: 10, seed: 3 } })
    net.partition(['a'], ['b', 'c'])
    await eventually(() => sites.a!.status().peers.every((p) => p.state === 'disconnected'), 5000, 'a sees peers disconnected')
    const writes: Record<string, Value> = {}
    for (const id of ['a', 'b', 'c']) {
      const s = sites[id]!.session()
      await s.put(`from-${id}`, id)
      await s.put('shared', id)
      expect((await s.get(`from-${id}`))!.value).toBe(id)
      expect((await s.getMany([`from-${id}`])).size).toBe(1)
      await s.delete(`from-${id}`)
      await s.put(`from-${id}`, id)
      writes[id] = id
    }
    expect(await sites.a!.session().get('from-b')).toBeUndefined()
    expect(sites.a!.status().peers.find((p) => p.id === 'b')!.pendingOut).toBeGreaterThan(0)
    net.heal()
    await net.settle()
    const finals = await Promise.all(['a', 'b', 'c'].map((id) => sites[id]!.session().getMany(['from-a', 'from-b', 'from-c', 'shared'])))
    for (const f of finals) expect(f).toEqual(finals[0])
    expect([...finals[0]!.values()].length).toBe(4)
    await eventually(() => ['a', 'b', 'c'].every((id) => sites[id]!.status().peers.every((p) => p.state === 'connected' && p.pendingOut === 0)), 5000, 'all connected')
  })

  it('relays along a chain a - b - c (c never talks to a)', async () => {
    const { sites, net } = await mk(['a', 'b', 'c'], { net: { latencyMs: 5 }, peers: { a: [{ site: 'b' }], c: [{ site: 'b' }] } })
    await sites.a!.session().put('from-a', 1)
    await sites.c!.session().put('from-c', 3)
    await net.settle()
    expect((await sites.c!.session().get('from-a'))!.value).toBe(1)
    expect((await sites.a!.session().get('from-c'))!.value).toBe(3)
    expect(sites.a!.status().peers.map((p) => p.id)).toEqual(['b'])
  })

  it('honours one-way links: writes flow a -> b only', async () => {
    const { sites, net } = await mk(['a', 'b'], { peers: { a: [{ site: 'b', receive: false }], b: [{ site: 'a', send: false }] } })
    await sites.a!.session().put('down', 'from a')
    await sites.b!.session().put('up', 'from b')
    await net.settle()
    expect((await sites.b!.session().get('down'))!.value).toBe('from a')
    expect(await sites.a!.session().get('up')).toBeUndefined()
  })

  it('return-all: concurrent puts become siblings everywhere; a put that read them supersedes exactly them', async () => {
    const { sites, net } = await mk(['a', 'b', 'c'], { site: { conflicts: { default: 'lww', prefixes: { 'cart/': 'return-all' } } } })
    net.partition(['a'], ['b'], ['c'])
    await sites.a!.session().put('cart/1', ['apple'])
    await sites.b!.session().put('cart/1', ['pear'])
    net.heal()
    await net.settle()
    const e = await sites.c!.session().get('cart/1')
    expect(e!.siblings!.map((s) => s.value).sort()).toEqual([['apple'], ['pear']])
    // c reads both, and while it merges them, a concurrent put arrives from a partitioned b.
    net.partition(['a', 'c'], ['b'])
    const sc = sites.c!.session()
    await sc.get('cart/1')
    await sites.b!.session().put('cart/1', ['plum'])
    await sc.put('cart/1', ['apple', 'pear'])
    net.heal()
    await net.settle()
    for (const id of ['a', 'b', 'c']) {
      const x = await sites[id]!.session().get('cart/1')
      expect(x!.siblings!.map((s) => s.value).sort()).toEqual([['apple', 'pear'], ['plum']])
    }
  })

  it('return-all: a delete hides what it saw; a concurrent put survives it', async () => {
    const { sites, net } = await mk(['a', 'b'], { site: { conflicts: 'return-all' } })
    await sites.a!.session().put('k', 'v1')
    await net.settle()
    net.partition(['a'], ['b'])
    const sa = sites.a!.session()
    await sa.get('k')
    await sa.delete('k')
    const sb = sites.b!.session()
    await sb.get('k')
    await sb.put('k', 'v2')
    net.heal()
    await net.settle()
    for (const id of ['a', 'b']) {
      const e = await sites[id]!.session().get('k')
      expect(e!.value).toBe('v2')
      expect(e!.siblings).toBeUndefined()
    }
  })

  it('merge functions converge (counter as per-site maxima)', async () => {
    const merge = (x: Value, y: Value) => {
      const a = x as Record<string, number>
      const b = y as Record<string, number>
      const out: Record<string, number> = { ...a }
      for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v)
      return out
    }
    const { sites, net } = await mk(['a', 'b', 'c'], { site: { conflicts: { prefixes: { 'counter/': merge } } } })
    net.partition(['a'], ['b'], ['c'])
    for (const id of ['a', 'b', 'c']) {
      const s = sites[id]!.session()
      for (let i = 1; i <= 3; i++) {
        const cur = ((await s.get('counter/x'))?.value ?? {}) as Record<string, number>
        await s.put('counter/x', { ...cur, [id]: (cur[id] ?? 0) + 1 })
      }
    }
    net.heal()
    await net.settle()
    for (const id of ['a', 'b', 'c']) expect((await sites[id]!.session().get('counter/x'))!.value).toEqual({ a: 3, b: 3, c: 3 })
  })

  it('session continuation: waits for the context, or CONTEXT_UNAVAILABLE, and stays usable', async () => {
    const { sites, net } = await mk(['a', 'b'], { net: { latencyMs: 50 } })
    await net.settle()
    const sa = sites.a!.session()
    await sa.put('order', 'placed')
    const token = sa.context()
    net.partition(['a'], ['b'])
    const sb = sites.b!.session({ context: token, waitMs: 100 })
    await expect(sb.get('order')).rejects.toMatchObject({ code: 'CONTEXT_UNAVAILABLE' })
    net.heal()
    const sb2 = sites.b!.session({ context: token, waitMs: 5000 })
    expect((await sb2.get('order'))!.value).toBe('placed')
    // The first session is still usable once the dependencies have arrived.
    expect((await sb.get('order'))!.value).toBe('placed')
  })

  it('an atomic multi-key write is visible at other sites all together or not at all', async () => {
    const { sites, net } = await mk(['a', 'b'], { net: { latencyMs: 5 }, site: { shards: 8 } })
    const keys = Array.from({ length: 16 }, (_, i) => `tx/${i}`)
    const torn: string[] = []
    let checks = 0
    let checking = Promise.resolve()
    const off = sites.b!.onApplied(() => {
      checking = checking.then(async () => {
        const m = await sites.b!.session().getMany(keys)
        checks++
        const versions = new Set([...m.values()].map((e) => `${e.version.time}/${e.version.site}`))
        if (versions.size > 1 || (m.size > 0 && m.size < keys.length)) torn.push(JSON.stringify([...m.values()].map((e) => e.value)))
      })
    })
    for (let round = 0; round < 20; round++) await sites.a!.session().write(keys.map((key) => ({ key, value: round })))
    await net.settle()
    await checking
    off()
    expect(checks).toBeGreaterThan(0)
    expect(torn).toEqual([])
    const m = await sites.b!.session().getMany(keys)
    expect([...m.values()].every((e) => e.value === 19)).toBe(true)
  })

  it('getMany is a causally consistent snapshot at a remote site', async () => {
    // a writes x=i then y=i (y depends on x); at b, a snapshot never shows y=i with x < i.
    const { sites, net } = await mk(['a', 'b'], { net: { latencyMs: 2, jitterMs: 3, seed: 9 }, site: { shards: 8 } })
    const bad: string[] = []
    let stop = false
    const reader = (async () => {
      while (!stop) {
        const m = await sites.b!.session().getMany(['x', 'y'])
        const x = (m.get('x')?.value as number | undefined) ?? -1
        const y = (m.get('y')?.value as number | undefined) ?? -1
        if (y > x) bad.push(`x=${x} y=${y}`)
        await new Promise((r) => setImmediate(r))
      }
    })()
    const s = sites.a!.session()
    for (let i = 0; i < 200; i++) {
      await s.put('x', i)
      await s.put('y', i)
    }
    await net.settle()
    stop = true
    await reader
    expect(bad).toEqual([])
  })

  it('a site restarted on the same network catches up from version vectors', async () => {
    const c = await mk(['a', 'b'], { net: { latencyMs: 5 } })
    await c.sites.a!.session().put('before', 1)
    await c.net.settle()
    await c.sites.b!.close()
    for (let i = 0; i < 300; i++) await c.sites.a!.session().put(`while-down/${i}`, i)
    expect(c.sites.a!.status().peers[0]!.state).toBe('disconnected')
    // memory storage forgets on close, so this b starts empty and must receive everything.
    const b = await c.open('b')
    await c.net.settle()
    expect((await b.session().get('before'))!.value).toBe(1)
    expect((await b.session().getMany(Array.from({ length: 300 }, (_, i) => `while-down/${i}`))).size).toBe(300)
  })

  it('drops corrupt frames from a peer and keeps serving', async () => {
    const { sites, net } = await mk(['a', 'b'])
    await net.settle()
    // Inject garbage through a rogue adapter posing as a third site that b allows (default: everyone).
    const rogue = net.adapter('rogue')
    await rogue.start('rogue', { peerUp() {}, peerDown() {}, frame() {}, drain() {}, inspect: () => ({ received: {}, applied: {}, idle: true }) })
    await eventually(() => rogue.connected('b'), 2000, 'rogue connected')
    for (const junk of [new Uint8Array([0xff, 0x00]), new Uint8Array(100).fill(0x93), Uint8Array.from([0x92, 0x01, 0x91, 0xc4, 0x03, 1, 2, 3])]) rogue.send('b', junk)
    await new Promise((r) => setTimeout(r, 20))
    await sites.a!.session().put('still', 'fine')
    await eventually(async () => (await sites.b!.session().get('still'))?.value === 'fine', 5000, 'b still replicating')
    await rogue.stop()
  })

  it('rejects calls on a closed site with CLOSED', async () => {
    const { sites } = await mk(['a'])
    await sites.a!.close()
    expect(() => sites.a!.session()).toThrow(CausewayError)
  })
})

describe('a site whose data is older than what it acknowledged', () => {
  it('fetches its own lost writes back from a peer before writing again, so no sequence number is reused (#14.4)', async () => {
    const c = await cluster(['a', 'b'])
    cleanup.push(() => c.close())
    for (let i = 0; i < 5; i++) await c.sites.a!.session().put(`k${i}`, i)
    await c.net.settle()
    await c.sites.a!.close()
    // memory storage: the reopened a has lost everything b already holds from it.
    const a2 = await c.open('a')
    const keys = Array.from({ length: 5 }, (_, i) => `k${i}`)
    await eventually(async () => (await a2.session().getMany(keys)).size === 5, 5000, 'a recovers its own writes from b')
    await a2.session().put('x', 1)
    // Had a reused a sequence number, b would drop x as a duplicate of one of the k writes.
    await eventually(async () => (await c.sites.b!.session().get('x'))?.value === 1, 5000, 'x reaches b')
    expect((await c.sites.b!.session().get('k4'))!.value).toBe(4)
    expect((await a2.session().get('k4'))!.value).toBe(4)
  })
})

describe('large entries', () => {
  it('replicates values near maxValueBytes without ever exceeding the transport frame limit', async () => {
    const net = createSimNetwork({ latencyMs: 1 })
    const limit = 1200 * 1024
    let biggest = 0
    const limited = (id: string): NetworkAdapter => {
      const inner = net.adapter(id)
      return {
        maxFrameBytes: limit,
        start: (site, h) => inner.start(site, h),
        peers: () => inner.peers(),
        connected: (p) => inner.connected(p),
        stop: () => inner.stop(),
        send(peer, bytes) {
          biggest = Math.max(biggest, bytes.length)
          if (bytes.length > limit) throw new CausewayError('INVALID_FRAME', 'frame over the limit')
          return inner.send(peer, bytes)
        },
      }
    }
    const a = await openSite({ id: 'a', storage: 'memory', maxValueBytes: 1000 * 1024, network: limited('a') })
    const b = await openSite({ id: 'b', storage: 'memory', maxValueBytes: 1000 * 1024, network: limited('b') })
    cleanup.push(async () => {
      await a.close()
      await b.close()
      await net.close()
    })
    await net.settle()
    // Queue everything while cut off, so the catch-up batches many entries per frame.
    net.partition(['a'], ['b'])
    const big = 'x'.repeat(900 * 1024)
    const s = a.session()
    await Promise.all([s.put('small/1', 1), s.put('big/1', big), s.put('small/2', 2), s.put('big/2', big + 'y'), s.put('big/3', big), s.put('big/4', big)])
    net.heal()
    await net.settle()
    const m = await b.session().getMany(['small/1', 'big/1', 'small/2', 'big/2', 'big/3', 'big/4'])
    expect(m.size).toBe(6)
    expect((m.get('big/2')!.value as string).length).toBe(900 * 1024 + 1)
    expect(biggest).toBeGreaterThan(900 * 1024)
    expect(biggest).toBeLessThanOrEqual(limit)
    // A value that could never fit one frame is refused when the site opens, not at send time.
    await expect(openSite({ id: 'c', storage: 'memory', maxValueBytes: 2 * 1024 * 1024, network: limited('c') })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })
})

describe('catch-up larger than one apply round', () => {
  it('applies thousands of queued writes with dependencies across many streams (no stall)', async () => {
    const c = await cluster(['a', 'b'], { site: { shards: 8 } })
    cleanup.push(() => c.close())
    await c.net.settle()
    c.net.partition(['a'], ['b'])
    // 64 sessions hop between shards, so every stream's entries depend on other streams' entries.
    let next = 0
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        const s = c.sites.a!.session()
        while (next < 6000) {
          const i = next++
          await s.put(`k/${i}`, i)
        }
      }),
    )
    c.net.heal()
    await c.net.settle(60_000)
    expect(c.sites.b!.status().pendingIn).toBe(0)
    const m = await c.sites.b!.session().getMany(Array.from({ length: 6000 }, (_, i) => `k/${i}`))
    expect(m.size).toBe(6000)
  })
})

describe('hostile values from a peer', () => {
  it('drops a well-formed write whose value is not a Value; nothing becomes readable', async () => {
    const { sites, net } = await mk(['a', 'b'])
    await net.settle()
    const rogue = net.adapter('rogue')
    await rogue.start('rogue', { peerUp() {}, peerDown() {}, frame() {}, drain() {}, inspect: () => ({ received: {}, applied: {}, idle: true }) })
    await eventually(() => rogue.connected('b'), 2000, 'rogue connected')
    const evilValue = Uint8Array.from([0xd4, 0x73, 0x00]) // msgpackr's Set extension
    const entry = encodeEntry({ stream: 'rogue/0', seq: 1, time: 1, site: 'rogue', deps: [], ops: [{ key: 'evil', value: evilValue, supersedes: [] }] })
    rogue.send('b', encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, site: 'rogue', accepts: true, sends: true, rv: [], ups: [] }))
    rogue.send('b', encodeFrame({ t: 'writes', e: [entry] }))
    await new Promise((r) => setTimeout(r, 50))
    expect(await sites.b!.session().get('evil')).toBeUndefined()
    expect(sites.b!.status().pendingIn).toBe(0)
    await sites.a!.session().put('fine', 1)
    await eventually(async () => (await sites.b!.session().get('fine'))?.value === 1, 5000, 'b still replicating')
    await rogue.stop()
  })
})
