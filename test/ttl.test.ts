import { afterEach, describe, expect, it } from 'vitest'
import { cluster } from './helpers.js'

let done: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const d of done.splice(0)) await d()
})

describe('ttl: queued writes that are worthless when late', () => {
  it('drops writes of a ttl keyspace that waited too long, keeps the stream flowing and everything else', async () => {
    let nowMs = 1_000_000
    const clock = { nowMs: () => nowMs }
    const c = await cluster(['a', 'b'], { site: { ttl: { 'metrics/': 60_000 }, clock } })
    done.push(() => c.close())
    const { sites, net } = c
    await net.settle()
    net.partition(['a'], ['b'])
    const s = sites.a!.session()
    await s.put('metrics/cpu', 0.93) // worthless in a minute
    await s.put('config/x', 'keep me') // no ttl
    await s.write([{ key: 'metrics/mem', value: 0.5 }, { key: 'config/y', value: 'atomic with a metric' }])
    nowMs += 5 * 60_000 // five minutes of partition
    await s.put('metrics/disk', 0.1) // fresh when the link returns
    net.heal()
    await net.settle()
    const b = sites.b!.session()
    expect(await b.get('metrics/cpu')).toBeUndefined()
    expect((await b.get('config/x'))!.value).toBe('keep me')
    // A write touching a non-ttl key is never dropped, even if it also holds a late metric.
    expect((await b.get('metrics/mem'))!.value).toBe(0.5)
    expect((await b.get('config/y'))!.value).toBe('atomic with a metric')
    expect((await b.get('metrics/disk'))!.value).toBe(0.1)
    // The origin keeps its own writes.
    expect((await sites.a!.session().get('metrics/cpu'))!.value).toBe(0.93)
    expect(sites.a!.status().peers[0]!.pendingOut).toBe(0)
    expect(sites.b!.status().pendingIn).toBe(0)
  })

  it('rejects a bad ttl option', async () => {
    await expect(cluster(['a'], { site: { ttl: { 'x/': -1 } } })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })
})
