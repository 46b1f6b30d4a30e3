import { afterEach, describe, expect, it } from 'vitest'
import { isCausewayError, type Site } from 'causeway'
import { eventually } from './helpers.js'
import { scopedCluster } from './scope-helpers.js'

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c()
})

const scopes = { 'eu/': ['paris', 'lyon'] }
const errCode = async (p: Promise<unknown>) => p.then(() => 'ok', (e) => (isCausewayError(e) ? e.code : String(e)))

describe('remote reads', () => {
  it('a non-member reads a scoped key from a member; a foreign key stays OUT_OF_SCOPE without remote', async () => {
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes })
    cleanup.push(() => c.close())
    const { paris, nyc } = c.sites as Record<string, Site>
    await paris!.session().put('eu/x', 'hello')
    await paris!.session().put('g', 1)
    await eventually(async () => (await nyc!.session().get('g')) !== undefined, 5000, 'g at nyc')
    const s = nyc!.session()
    expect((await s.get('eu/x', { remote: true, waitMs: 3000 }))?.value).toBe('hello')
    const many = await s.getMany(['eu/x', 'eu/none', 'g'], { remote: true, waitMs: 3000 })
    expect(many.get('eu/x')?.value).toBe('hello')
    expect(many.get('g')?.value).toBe(1)
    expect(many.has('eu/none')).toBe(false)
    expect(await errCode(s.get('eu/x'))).toBe('OUT_OF_SCOPE')
    expect(await errCode(s.get('eu/x', { remote: true, waitMs: -1 }))).toBe('INVALID_ARGUMENT')
    // Nothing of the remote read was stored at nyc.
    expect(await c.leaks('nyc', ['eu/x', 'hello'])).toEqual([])
  })

  it('UNAVAILABLE when no member answers in time', async () => {
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes })
    cleanup.push(() => c.close())
    const { paris, nyc } = c.sites as Record<string, Site>
    await paris!.session().put('eu/x', 'hello')
    await eventually(() => nyc!.status().peers.every((p) => p.state === 'connected'), 5000, 'connected')
    // Members reachable but too slow: the answer misses waitMs.
    c.net.setLatency('nyc', 'paris', 500)
    c.net.setLatency('nyc', 'lyon', 500)
    expect(await errCode(nyc!.session().get('eu/x', { remote: true, waitMs: 100 }))).toBe('UNAVAILABLE')
    // No member connected at all.
    c.net.partition(['paris', 'lyon'], ['nyc'])
    await eventually(() => nyc!.status().peers.every((p) => p.state !== 'connected' && p.state !== 'synchronizing'), 5000, 'down')
    expect(await errCode(nyc!.session().get('eu/x', { remote: true, waitMs: 200 }))).toBe('UNAVAILABLE')
    // Local operations do not wait for the WAN.
    await nyc!.session().put('local', 1)
  })

  it("the member answers only once the session's past is visible there", async () => {
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes })
    cleanup.push(() => c.close())
    const { paris, lyon, nyc } = c.sites as Record<string, Site>
    await paris!.session().put('eu/x', 'old')
    await eventually(async () => (await lyon!.session().get('eu/x'))?.value === 'old', 5000, 'old at lyon')
    c.net.setLatency('paris', 'lyon', 1200)
    const p = paris!.session()
    await p.get('eu/x')
    await p.put('eu/x', 'new')
    await p.put('g', 'after-new') // depends on eu/x = new
    const n = nyc!.session()
    await eventually(async () => (await n.get('g'))?.value === 'after-new', 5000, 'g at nyc')
    // Only lyon can answer now; it lacks 'new' and must wait for g's dependencies first.
    c.net.cut('nyc', 'paris')
    await eventually(() => nyc!.status().peers.find((x) => x.id === 'paris')?.state !== 'connected', 5000, 'cut')
    expect((await lyon!.session().get('eu/x'))?.value).toBe('old')
    expect((await n.get('eu/x', { remote: true, waitMs: 5000 }))?.value).toBe('new')
  })

  it("the session's later operations see everything the remote value depended on", async () => {
    // lyon sends nyc no writes (one-way), so what nyc holds of paris comes over the slow direct link.
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes }, {
      peers: { paris: [{ site: 'lyon' }, { site: 'nyc' }], lyon: [{ site: 'paris' }, { site: 'nyc', send: false }], nyc: [{ site: 'paris' }, { site: 'lyon', receive: false }] },
    })
    cleanup.push(() => c.close())
    const { paris, lyon, nyc } = c.sites as Record<string, Site>
    await eventually(() => nyc!.status().peers.every((p) => p.state === 'connected'), 5000, 'connected')
    c.net.setLatency('paris', 'nyc', 1000)
    const p = paris!.session()
    await p.put('g', 'cause')
    await p.put('eu/x', 'effect') // depends on g
    await eventually(async () => (await lyon!.session().get('eu/x'))?.value === 'effect', 5000, 'effect at lyon')
    const n = nyc!.session()
    // lyon answers at once; nyc does not hold g yet (paris -> nyc is slow).
    expect((await n.get('eu/x', { remote: true, waitMs: 4000 }))?.value).toBe('effect')
    expect(await nyc!.session().get('g')).toBeUndefined() // another session may not see it yet
    expect((await n.get('g'))?.value).toBe('cause')
  })
})

describe('relays through non-members', () => {
  it('a member never takes a non-member relay\'s stub for the write (safety; delivery waits for a member link)', async () => {
    // paris - nyc - lyon: paris and lyon (both eu/ members) are not linked; nyc is not a member.
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes }, {
      peers: { paris: [{ site: 'nyc' }], nyc: [{ site: 'paris' }, { site: 'lyon' }], lyon: [{ site: 'nyc' }] },
    })
    cleanup.push(() => c.close())
    const { paris, lyon, nyc } = c.sites as Record<string, Site>
    const p = paris!.session()
    await p.put('eu/x', 'v')
    await p.put('g', 'after')
    await eventually(async () => (await nyc!.session().get('g'))?.value === 'after', 5000, 'g at nyc')
    await new Promise((r) => setTimeout(r, 300))
    // lyon got only a stub of eu/x through nyc: it refuses it, so it neither shows g without eu/x
    // nor believes it has applied paris's write.
    const l = lyon!.session()
    const gx = await l.getMany(['g', 'eu/x'])
    expect(gx.has('g')).toBe(false)
    expect(gx.has('eu/x')).toBe(false)
    expect(await c.leaks('nyc', ['eu/x'])).toEqual([])
  })

  it('a member relays scoped writes in full to another member, and only stubs to non-members', async () => {
    // paris - lyon - nice (chain) + nyc hanging off lyon; eu/ = paris, lyon, nice.
    const c = await scopedCluster(['paris', 'lyon', 'nice', 'nyc'], { scopes: { 'eu/': ['paris', 'lyon', 'nice'] } }, {
      peers: { paris: [{ site: 'lyon' }], lyon: [{ site: 'paris' }, { site: 'nice' }, { site: 'nyc' }], nice: [{ site: 'lyon' }], nyc: [{ site: 'lyon' }] },
    })
    cleanup.push(() => c.close())
    const { paris, nice, nyc } = c.sites as Record<string, Site>
    const p = paris!.session()
    await p.put('eu/x', 'RELAYED-VALUE')
    await p.put('g', 'after')
    await eventually(async () => (await nice!.session().get('eu/x'))?.value === 'RELAYED-VALUE', 5000, 'eu/x at nice')
    await eventually(async () => (await nyc!.session().get('g'))?.value === 'after', 5000, 'g at nyc')
    expect(c.sentTo('nyc', ['RELAYED-VALUE', 'eu/x'])).toEqual([])
    expect(await c.leaks('nyc', ['RELAYED-VALUE', 'eu/x'])).toEqual([])
  })
})
