import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { MemoryLevel } from 'memory-level'
import { CausewayError, createSite, type OpenSiteOptions, type Site } from '@causeway/core'
import { createSimNetwork, type SimNetwork } from '@causeway/sim'
import { CausewayLevel } from '../src/index.js'

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function site(extra: Partial<OpenSiteOptions> = {}): Promise<Site> {
  const s = await createSite({ id: 'solo', storage: 'memory', ...extra })
  cleanup.push(() => s.close())
  return s
}

async function pair(extra: Partial<OpenSiteOptions> = {}, latencyMs = 10): Promise<{ net: SimNetwork; a: Site; b: Site }> {
  const net = createSimNetwork({ latencyMs, jitterMs: 2, seed: 3 })
  const a = await createSite({ id: 'a', storage: 'memory', heartbeatMs: 50, network: net.adapter('a'), ...extra })
  const b = await createSite({ id: 'b', storage: 'memory', heartbeatMs: 50, network: net.adapter('b'), ...extra })
  cleanup.push(async () => {
    await Promise.allSettled([a.close(), b.close()])
    await net.close()
  })
  return { net, a, b }
}

async function code(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    return (e as { code?: string }).code
  }
  return undefined
}

describe('CausewayLevel replication', () => {
  it('a put through one CausewayLevel is visible through another on the peer site', async () => {
    const { net, a, b } = await pair()
    const da = new CausewayLevel({ site: a, prefix: 'app/', valueEncoding: 'json' })
    const db = new CausewayLevel({ site: b, prefix: 'app/', valueEncoding: 'json' })
    await da.put('users/1', { name: 'ada' })
    await da.batch([
      { type: 'put', key: 'users/2', value: { name: 'bob' } },
      { type: 'put', key: 'users/3', value: { name: 'cy' } },
    ])
    await da.sublevel('tags').put('t1', 'x')
    await net.settle()
    expect(await db.get('users/1')).toEqual({ name: 'ada' })
    expect(await db.keys({ gte: 'users/', lt: 'users0' }).all()).toEqual(['users/1', 'users/2', 'users/3'])
    expect(await db.sublevel('tags').get('t1')).toBe('x')
    await db.del('users/2')
    await net.settle()
    expect(await da.get('users/2')).toBeUndefined()
    expect(await da.keys({ gte: 'users/', lt: 'users0' }).all()).toEqual(['users/1', 'users/3'])
  })

  it('a database continued at the peer from another one\'s context waits for what that one wrote', async () => {
    const { a, b } = await pair({}, 150)
    const da = new CausewayLevel({ site: a, prefix: 'c/' })
    await da.put('k', 'written at a')
    const token = da.context()
    // No settle(): the continued session's first read waits (≤ waitMs) for the context's writes.
    const db = new CausewayLevel({ site: b, prefix: 'c/', session: b.session({ context: token, waitMs: 10_000 }) })
    expect(await db.get('k')).toBe('written at a')
    const plain = new CausewayLevel({ site: b, prefix: 'c/' })
    await plain.open()
    expect(typeof plain.context()).toBe('string')
  })

  it("under 'return-all' a read returns the winner, the same at both sites", async () => {
    const { net, a, b } = await pair({ conflicts: 'return-all' })
    const da = new CausewayLevel({ site: a, prefix: 'p/' })
    const db = new CausewayLevel({ site: b, prefix: 'p/' })
    net.partition(['a'], ['b'])
    await da.put('k', 'from-a')
    await db.put('k', 'from-b')
    net.heal()
    await net.settle()
    const entry = await a.session().get('p/k')
    expect(entry?.siblings?.length).toBe(2) // a real conflict, not a superseded write
    const winner = entry!.value
    expect(await da.get('k')).toBe(winner)
    expect(await db.get('k')).toBe(winner)
    expect(await db.iterator().all()).toEqual([['k', winner]])
  })
})

describe('CausewayLevel on one site', () => {
  it('keys are stored as <prefix><key>; databases with other prefixes do not see them', async () => {
    const s = await site()
    const one = new CausewayLevel({ site: s, prefix: 'one/' })
    const two = new CausewayLevel({ site: s, prefix: 'two/' })
    await one.put('a', 'x')
    await two.put('b', 'y')
    expect((await s.session().get('one/a'))?.value).toBe('x')
    expect(await one.keys().all()).toEqual(['a'])
    expect(await two.keys().all()).toEqual(['b'])
    await one.clear()
    expect(await two.get('b')).toBe('y')
    // A value written by a plain session reads as its JSON text.
    await s.session().put('one/obj', { n: 1 })
    expect(await one.get('obj', { valueEncoding: 'json' })).toEqual({ n: 1 })
  })

  it('batch is one atomic write: every op carries the same version', async () => {
    const s = await site({ shards: 4 })
    const d = new CausewayLevel({ site: s, prefix: 'b/' })
    await d.open() // a chained batch needs an open database (abstract-level rule)
    await d.batch().put('x', '1').put('y', '2').put('x', '3').del('z').put('w', '4').write()
    const m = await s.session().getMany(['b/x', 'b/y', 'b/w'])
    expect(m.get('b/x')?.value).toBe('3') // the last op on a key wins
    const versions = new Set([...m.values()].map((e) => `${e.version.time}@${e.version.site}`))
    expect(versions.size).toBe(1)
  })

  it('key order equals memory-level (LevelDB) order for any bytes, forward, reverse and ranged', async () => {
    const s = await site({ shards: 3 })
    let n = 0
    const key = fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 4 }).map((x) => new TextEncoder().encode(x)))
    await fc.assert(
      fc.asyncProperty(fc.array(key, { maxLength: 25 }), key, key, fc.boolean(), async (keys, lo, hi, reverse) => {
        const d = new CausewayLevel({ site: s, prefix: `o${n++}/`, keyEncoding: 'view', valueEncoding: 'view' })
        const m = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' })
        const ops = keys.map((k, i) => ({ type: 'put' as const, key: k, value: Uint8Array.of(i) }))
        await d.batch(ops)
        await m.batch(ops)
        // memory-level hands out Buffers for 'view'; compare the bytes.
        const bytes = (rows: Array<[Uint8Array, Uint8Array]>) => rows.map(([k, v]) => [[...k], [...v]])
        for (const opts of [{ reverse }, { gte: lo, lt: hi, reverse }, { gt: lo, lte: hi, reverse, limit: 3 }]) {
          expect(bytes(await d.iterator(opts).all())).toEqual(bytes(await m.iterator(opts).all()))
        }
        const it = d.keys({ reverse })
        const mit = m.keys({ reverse })
        it.seek(lo)
        mit.seek(lo)
        expect((await it.all()).map((k) => [...k])).toEqual((await mit.all()).map((k) => [...k]))
        await m.close()
      }),
      { numRuns: 40 },
    )
  })

  it('utf8 keys round-trip and sort by code point (UTF-8 byte order)', async () => {
    const s = await site()
    const d = new CausewayLevel({ site: s, prefix: 'u/' })
    const keys = ['z', 'é', '\u{1F404}', 'a', '\uffff', 'ab']
    for (const k of keys) await d.put(k, k)
    expect(await d.keys().all()).toEqual(['a', 'ab', 'z', 'é', '\uffff', '\u{1F404}'])
    expect(await d.get('\u{1F404}')).toBe('\u{1F404}')
  })
})

describe('CausewayLevel bad input gets abstract-level error codes', () => {
  it('empty, too long, null keys: LEVEL_INVALID_KEY; nothing of a bad batch is written', async () => {
    const s = await site()
    const bare = new CausewayLevel({ site: s })
    expect(await code(bare.put('', 'x'))).toBe('LEVEL_INVALID_KEY')
    expect(await code(bare.get(''))).toBe('LEVEL_INVALID_KEY')
    const d = new CausewayLevel({ site: s, prefix: 'pre/' })
    await d.put('', 'empty key is fine under a prefix')
    expect(await d.get('')).toBe('empty key is fine under a prefix')
    expect(await code(d.put('k'.repeat(1024 - 4 + 1), 'x'))).toBe('LEVEL_INVALID_KEY')
    await d.put('k'.repeat(1024 - 4), 'at the limit')
    // Bytes 0x80-0xff take two UTF-8 bytes in the stored key.
    expect(await code(d.put(new Uint8Array(600).fill(0xff), 'x', { keyEncoding: 'view' }))).toBe('LEVEL_INVALID_KEY')
    expect(await code(d.put(null as never, 'x'))).toBe('LEVEL_INVALID_KEY')
    expect(await code(d.batch([{ type: 'put', key: 'ok', value: '1' }, { type: 'put', key: 'k'.repeat(2000), value: '2' }]))).toBe('LEVEL_INVALID_KEY')
    expect(await d.get('ok')).toBeUndefined()
    expect(await code(d.put('v', undefined as never))).toBe('LEVEL_INVALID_VALUE')
  })

  it('a value over maxValueBytes: LEVEL_INVALID_VALUE; a closed site: LEVEL_DATABASE_NOT_OPEN', async () => {
    const s = await createSite({ id: 'small', storage: 'memory', maxValueBytes: 100 })
    const d = new CausewayLevel({ site: s, prefix: 'p/' })
    expect(await code(d.put('big', 'x'.repeat(200)))).toBe('LEVEL_INVALID_VALUE')
    await s.close()
    expect(await code(d.put('k', 'v'))).toBe('LEVEL_DATABASE_NOT_OPEN')
    expect(await code(d.get('k'))).toBe('LEVEL_DATABASE_NOT_OPEN')
  })

  it('bad options: INVALID_OPTIONS', async () => {
    const s = await site()
    expect(() => new CausewayLevel({ site: s, prefix: '\ud800' })).toThrow(CausewayError)
    expect(() => new CausewayLevel({ site: undefined as never })).toThrow(CausewayError)
    try {
      new CausewayLevel({ site: s, prefix: 7 as never })
    } catch (e) {
      expect((e as CausewayError).code).toBe('INVALID_OPTIONS')
    }
  })
})

describe('site.scanKeys ranges (the engine scan CausewayLevel reads through)', () => {
  it('gt/gte/lt/lte/after/reverse/limit select exactly the filtered sorted keys on 4 shards', async () => {
    const s = await site({ shards: 4 })
    const all: string[] = []
    for (let i = 0; i < 60; i++) all.push(`r/${String(i).padStart(2, '0')}`)
    for (const k of all) await s.session().put(k, 1)
    await s.session().put('q/out', 1)
    await s.session().put('s/out', 1)
    await s.session().delete('r/30')
    const live = all.filter((k) => k !== 'r/30')
    const scan = async (o: object) => {
      const out: string[] = []
      for await (const k of s.scanKeys('r/', o)) out.push(k)
      return out
    }
    expect(await scan({})).toEqual(live)
    expect(await scan({ reverse: true })).toEqual([...live].reverse())
    expect(await scan({ gt: 'r/10', lte: 'r/20' })).toEqual(live.filter((k) => k > 'r/10' && k <= 'r/20'))
    expect(await scan({ gte: 'r/10', lt: 'r/20', reverse: true, limit: 4 })).toEqual(['r/19', 'r/18', 'r/17', 'r/16'])
    expect(await scan({ after: 'r/50', gte: 'r/40' })).toEqual(live.filter((k) => k > 'r/50'))
    expect(await scan({ gt: 'a', lt: 'zz' })).toEqual(live) // bounds outside the prefix stay inside it
    expect(await scan({ gte: 'r/40', lt: 'r/40' })).toEqual([])
    expect(await scan({ gte: 'r/29', lte: 'r/31', reverse: true })).toEqual(['r/31', 'r/29'])
  })
})
