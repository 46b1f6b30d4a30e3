/**
 * Multi-process integration: real `causeway serve` processes replicating over libp2p on
 * 127.0.0.1 with emulated WAN latency, driven through the HTTP API.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ProcessCluster, ensureBuilt, eventually, sleep } from '../packages/causeway/test/cluster.js'

// Far site pairs get 150 ms one-way, near ones 10 ms, so a relay path can overtake a direct one.
const FAR = 150
const NEAR = 10

describe('three sites as OS processes (full mesh, emulated latency)', () => {
  const c = new ProcessCluster()
  beforeAll(async () => {
    ensureBuilt()
    await c.init([
      { id: 's1', peers: [{ site: 's2' }, { site: 's3' }], latencyMs: { s2: NEAR, s3: FAR } },
      { id: 's2', peers: [{ site: 's1' }, { site: 's3' }], latencyMs: { s1: NEAR, s3: NEAR } },
      { id: 's3', peers: [{ site: 's1' }, { site: 's2' }], latencyMs: { s1: FAR, s2: NEAR } },
    ])
    await Promise.all(['s1', 's2', 's3'].map((id) => c.start(id)))
    await c.waitConnected(['s1', 's2', 's3'], 15_000)
  }, 60_000)
  afterAll(async () => { await c.killAll() }, 30_000)
  afterEach((ctx) => { if (ctx.task.result?.state === 'fail') c.dumpLogs() })

  it('a write and its causal successor become visible at the others in causal order', async () => {
    const a = await c.put('s1', 'a', 'a1')
    expect(a.status).toBe(200)
    const b = await c.put('s1', 'b', 'b1', a.context)
    expect(b.status).toBe(200)
    const seenB = await eventually(async () => {
      const r = await c.get('s3', 'b')
      return r.status === 200 ? r : undefined
    }, 10_000, 'b at s3')
    const readA = await c.get('s3', 'a', seenB.context, 0)
    expect(readA.status).toBe(200)
    expect(readA.body.value).toBe('a1')
  })

  it('a dependency across sites: s3 never shows y (written at s2 after reading x) without x', async () => {
    for (let i = 0; i < 5; i++) {
      const x = await c.put('s1', `x${i}`, i) // s1 -> s3 is the slow link
      const seen = await c.get('s2', `x${i}`, x.context, 5000)
      expect(seen.status, `x${i} at s2: ${JSON.stringify(seen.body)}`).toBe(200)
      const y = await c.put('s2', `y${i}`, i, seen.context) // s2 -> s3 is fast
      expect(y.status).toBe(200)
      const yAt3 = await eventually(async () => {
        const r = await c.get('s3', `y${i}`)
        return r.status === 200 ? r : undefined
      }, 10_000, `y${i} at s3`)
      // No context needed: causal+ makes x visible at s3 before y is.
      const xAt3 = await c.get('s3', `x${i}`)
      expect(xAt3.status, `x${i} at s3 after y${i}: ${JSON.stringify(xAt3.body)}`).toBe(200)
      const xWithCtx = await c.get('s3', `x${i}`, yAt3.context, 0)
      expect(xWithCtx.status, `x${i} at s3 with y's context: ${JSON.stringify(xWithCtx.body)}`).toBe(200)
      const both = await c.getMany('s3', [`x${i}`, `y${i}`])
      expect(both.body.entries.map((e: { key: string }) => e.key).sort()).toEqual([`x${i}`, `y${i}`])
    }
  })

  it('SIGKILL mid-load: no acknowledged write is lost, and the site catches up after restart', async () => {
    const acked: string[] = []
    let stop = false
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop && i < 10_000; i++) {
        const key = `load/${w}/${i}`
        try {
          const r = await c.put('s1', key, { w, i })
          if (r.status === 200) acked.push(key)
        } catch {
          return // connection refused/reset: the process is gone
        }
      }
    }
    const writers = [0, 1, 2, 3].map(writer)
    await eventually(async () => acked.length >= 60 || undefined, 15_000, '60 acknowledged writes')
    await c.stop('s1', 'SIGKILL')
    stop = true
    await Promise.all(writers)
    const ackedNow = [...acked]
    // s1 is down: the others keep serving, and s1 must learn this write after its restart.
    expect((await c.put('s2', 'during-outage', 'yes')).status).toBe(200)
    await c.start('s1')
    for (const site of ['s1', 's2', 's3']) {
      await eventually(async () => {
        for (let off = 0; off < ackedNow.length; off += 500) {
          const keys = ackedNow.slice(off, off + 500)
          const r = await c.getMany(site, keys)
          if (r.status !== 200 || r.body.entries.length !== keys.length) return undefined
        }
        return true
      }, 20_000, `${ackedNow.length} acknowledged writes at ${site}`)
    }
    await c.waitValue('s1', 'during-outage', 'yes', 15_000)
    // Data may have arrived by relay; the direct links must come back too.
    await c.waitConnected(['s1', 's2', 's3'], 15_000)
  })

  it('a site whose peers are stopped keeps accepting writes, reports them disconnected, and converges', async () => {
    expect(await c.stop('s2', 'SIGTERM')).toBe(0)
    expect(await c.stop('s3', 'SIGTERM')).toBe(0)
    for (let i = 0; i < 5; i++) expect((await c.put('s1', `alone/${i}`, i)).status).toBe(200)
    let lastStatus: unknown
    await eventually(async () => {
      const st = await c.status('s1')
      lastStatus = st.body
      const states = (st.body.peers as Array<{ id: string; state: string }>).map((p) => `${p.id}:${p.state}`).sort()
      return JSON.stringify(states) === JSON.stringify(['s2:disconnected', 's3:disconnected']) || undefined
    }, 10_000, 's1 to report its peers disconnected').catch((e: Error) => { throw new Error(`${e.message}; last status ${JSON.stringify(lastStatus)}`) })
    await Promise.all([c.start('s2'), c.start('s3')])
    for (const site of ['s2', 's3']) for (let i = 0; i < 5; i++) await c.waitValue(site, `alone/${i}`, i, 15_000)
    await eventually(async () => {
      const st = await c.status('s1')
      return (st.body.peers as Array<{ state: string }>).every((p) => p.state === 'connected') || undefined
    }, 15_000, 's1 to report its peers connected')
    await c.waitConnected(['s1', 's2', 's3'], 15_000)
  })
})

describe('chain a-b-c and a one-way link', () => {
  const chain = new ProcessCluster()
  const oneWay = new ProcessCluster()
  beforeAll(async () => {
    ensureBuilt()
    await chain.init([
      { id: 'a', peers: [{ site: 'b' }], latencyMs: NEAR },
      { id: 'b', peers: [{ site: 'a' }, { site: 'c' }], latencyMs: NEAR },
      { id: 'c', peers: [{ site: 'b' }], latencyMs: NEAR },
    ])
    // p sends to q; q accepts from p but never sends its writes back.
    await oneWay.init([
      { id: 'p', peers: [{ site: 'q', send: true, receive: false }] },
      { id: 'q', peers: [{ site: 'p', send: false, receive: true }] },
    ])
    await Promise.all([...['a', 'b', 'c'].map((id) => chain.start(id)), ...['p', 'q'].map((id) => oneWay.start(id))])
    await Promise.all([chain.waitConnected(['a', 'b', 'c'], 15_000), oneWay.waitConnected(['p', 'q'], 15_000)])
  }, 60_000)
  afterAll(async () => { await Promise.all([chain.killAll(), oneWay.killAll()]) }, 30_000)
  afterEach((ctx) => { if (ctx.task.result?.state === 'fail') { chain.dumpLogs(); oneWay.dumpLogs() } })

  it('writes at either end of the chain reach the other end by relay', async () => {
    const w1 = await chain.put('a', 'from-a', 1)
    await chain.put('a', 'from-a-2', 2, w1.context)
    await chain.put('c', 'from-c', 3)
    await chain.waitValue('c', 'from-a-2', 2, 15_000)
    expect((await chain.get('c', 'from-a')).status).toBe(200) // causal: from-a precedes from-a-2
    await chain.waitValue('a', 'from-c', 3, 15_000)
    await chain.waitValue('b', 'from-c', 3, 15_000)
  })

  it('a one-way link carries writes in its direction only', async () => {
    await oneWay.put('q', 'from-q', 'q')
    await oneWay.put('p', 'from-p', 'p')
    await oneWay.waitValue('q', 'from-p', 'p', 15_000)
    await sleep(1000)
    expect((await oneWay.get('p', 'from-q')).status).toBe(404)
  })
})
