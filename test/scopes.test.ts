import { afterEach, describe, expect, it } from 'vitest'
import { decodeEntry, isCausewayError, type Site } from 'causeway'
import { eventually } from './helpers.js'
import { scopedCluster } from './scope-helpers.js'

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c()
})

const scopes = { 'eu/': ['paris', 'lyon'], 'eu/fr/': ['paris'], 'us/': ['nyc', 'lyon'] }

async function code(p: Promise<unknown>): Promise<{ code?: string; sites?: unknown }> {
  try {
    await p
    return {}
  } catch (e) {
    if (!isCausewayError(e)) throw e
    return { code: e.code, sites: e.details.sites }
  }
}


describe('replication scopes', () => {
  it('a scoped key lives at its members only; writes and local reads elsewhere are OUT_OF_SCOPE with sites', async () => {
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes, shards: 2 })
    cleanup.push(() => c.close())
    const { paris, lyon, nyc } = c.sites as Record<string, Site>
    const p = paris!.session()
    await p.put('eu/secret-key-1', 'SECRET-VALUE-1')
    await p.write([
      { key: 'eu/secret-key-2', value: 'SECRET-VALUE-2' },
      { key: 'eu/secret-key-3', value: 'SECRET-VALUE-3' },
    ])
    await p.delete('eu/secret-key-1')
    await p.put('eu/secret-key-4', { nested: 'SECRET-VALUE-4' })
    await p.put('global', 'everyone')
    await eventually(async () => (await nyc!.session().get('global'))?.value === 'everyone', 5000, 'global at nyc')
    await eventually(async () => (await lyon!.session().get('eu/secret-key-4')) !== undefined, 5000, 'eu at lyon')
    expect((await lyon!.session().get('eu/secret-key-2'))?.value).toBe('SECRET-VALUE-2')
    expect(await lyon!.session().get('eu/secret-key-1')).toBeUndefined()

    // Errors: writes and local reads of foreign keys, with the scope's members.
    const n = nyc!.session()
    expect(await code(n.get('eu/secret-key-2'))).toEqual({ code: 'OUT_OF_SCOPE', sites: ['lyon', 'paris'] })
    expect(await code(n.getMany(['global', 'eu/x']))).toMatchObject({ code: 'OUT_OF_SCOPE' })
    expect(await code(n.put('eu/y', 1))).toEqual({ code: 'OUT_OF_SCOPE', sites: ['lyon', 'paris'] })
    expect(await code(n.delete('eu/y'))).toMatchObject({ code: 'OUT_OF_SCOPE' })
    expect(await code(n.write([{ key: 'g2', value: 1 }, { key: 'eu/y', value: 1 }]))).toMatchObject({ code: 'OUT_OF_SCOPE' })
    // Longest prefix wins: eu/fr/ is paris only.
    expect(await code(lyon!.session().put('eu/fr/x', 1))).toEqual({ code: 'OUT_OF_SCOPE', sites: ['paris'] })
    // One write may not mix scopes with different members (atomicity could not hold at every holder).
    expect(await code(p.write([{ key: 'eu/a', value: 1 }, { key: 'g3', value: 1 }]))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(await code(p.write([{ key: 'eu/a', value: 1 }, { key: 'eu/fr/b', value: 1 }]))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(await nyc!.session().get('g2')).toBeUndefined()

    // nyc applied every entry of paris's streams (stubs keep them gapless) ...
    await paris!.idle()
    await eventually(() => {
      const pa = paris!.status()
      return pa.peers.every((x) => x.pendingOut === 0)
    }, 5000, 'paris drained')
    // ... no frame towards it carried a scoped key name or value ...
    expect(c.sentTo('nyc', ['secret-key', 'SECRET-VALUE'])).toEqual([])
    expect(c.sentTo('lyon', ['SECRET-VALUE-2'])).toEqual(['SECRET-VALUE-2'])
    // ... and its storage holds none either.
    expect(await c.leaks('nyc', ['secret-key', 'SECRET-VALUE'])).toEqual([])
    // The members do hold them (the check can see them when they are there).
    expect((await c.leaks('lyon', ['SECRET-VALUE-2'])).length).toBeGreaterThan(0)
    // nyc's log holds stubs for paris's scoped writes: no ops, holders = the scope's members.
    let stubs = 0
    for (const [k, v] of await c.contents('nyc')) {
      if (!k.startsWith('l!paris/')) continue
      const e = decodeEntry(v, 1 << 20)
      if (e.holders) {
        stubs++
        expect(e.ops).toEqual([])
        expect(e.holders).toEqual(['lyon', 'paris'])
      }
    }
    expect(stubs).toBe(4)
  })

  it('a later unscoped write that depends on a scoped one applies at a non-member (the stub satisfies it)', async () => {
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes, shards: 4 })
    cleanup.push(() => c.close())
    const { paris, nyc } = c.sites as Record<string, Site>
    const p = paris!.session()
    for (let i = 0; i < 20; i++) await p.put(`eu/k${i}`, i)
    await p.put('after', 'done')
    await eventually(async () => (await nyc!.session().get('after'))?.value === 'done', 5000, 'after at nyc')
    expect(await c.leaks('nyc', ['eu/k'])).toEqual([])
    expect(c.sentTo('nyc', ['eu/k'])).toEqual([])
  })
})

describe('scope stubs on the wire', () => {
  it('a backlog of scoped writes reaches a non-member as one run record per stream, and its stream stays gapless', async () => {
    const c = await scopedCluster(['paris', 'lyon', 'nyc'], { scopes, shards: 1 })
    cleanup.push(() => c.close())
    const { paris, nyc } = c.sites as Record<string, Site>
    c.net.partition(['paris', 'lyon'], ['nyc'])
    const p = paris!.session()
    for (let i = 0; i < 40; i++) await p.put(`eu/k${i}`, `V${i}`)
    await p.put('after', 'done')
    const before = c.wire['nyc']?.length ?? 0
    c.net.heal()
    await eventually(async () => (await nyc!.session().get('after'))?.value === 'done', 5000, 'after at nyc')
    const { decodeFrame } = await import('@causeway/core')
    let runs = 0
    let entries = 0
    for (const b of c.wire['nyc']!.slice(before)) {
      const f = decodeFrame(b)
      if (f.t !== 'writes') continue
      for (const e of f.e) {
        entries++
        if (e[0] === 0x98 && e[1] === 0x04) runs++
      }
    }
    // 40 stubs + 1 write: far fewer records than entries crossed (the exact split depends on frames).
    expect(runs).toBeGreaterThan(0)
    expect(entries).toBeLessThan(20)
    expect(c.sentTo('nyc', ['eu/k', 'V1'])).toEqual([])
    expect(await c.leaks('nyc', ['eu/k'])).toEqual([])
  })
})
