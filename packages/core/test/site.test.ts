import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSite } from '../src/site.js'
import type { Site } from '../src/api.js'
import { CausewayError } from '../src/errors.js'
import { compareVersions } from '../src/types.js'

const dirs: string[] = []
const sites: Site[] = []
afterEach(async () => {
  await Promise.allSettled(sites.splice(0).map((s) => s.close()))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'cw-test-'))
  dirs.push(d)
  return d
}

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    expect(e).toBeInstanceOf(CausewayError)
    expect((e as CausewayError).code).toBe(code)
    return
  }
  expect.unreachable(`expected ${code}`)
}

for (const storage of ['memory', 'level'] as const) {
  describe(`site on ${storage} storage`, () => {
    const open = async (o: Record<string, unknown> = {}) => {
      const s = await createSite({ id: 'paris', storage, dir: storage === 'level' ? tmp() : undefined, ...o })
      sites.push(s)
      return s
    }

    it('put / get / delete / getMany', async () => {
      const site = await open()
      const s = site.session()
      const value = { state: 'building', n: 1.5, ok: true, none: null, at: new Date(86_400_000), raw: new Uint8Array([1, 2, 3]), list: [1, 'two', [3]] }
      const v = await s.put('vm/42', value)
      expect(v.site).toBe('paris')
      const e = await s.get('vm/42')
      expect(e).toEqual({ key: 'vm/42', value, version: v })
      expect(e!.value).not.toBe(value)
      const m = await s.getMany(['vm/42', 'missing'])
      expect([...m.keys()]).toEqual(['vm/42'])
      const d = await s.delete('vm/42')
      expect(compareVersions(d, v)).toBe(1)
      expect(await s.get('vm/42')).toBeUndefined()
      expect(await s.get('never')).toBeUndefined()
    })

    it('stores a value with a __proto__ key exactly as written (issue 8.3)', async () => {
      const site = await open()
      const s = site.session()
      const value = JSON.parse('{"__proto__":{"admin":true},"list":[{"__proto__":1}],"__proto_":2}') as Record<string, unknown>
      await s.put('k', value)
      const e = await s.get('k')
      expect(JSON.stringify(e!.value)).toBe(JSON.stringify(value))
      expect(Object.keys(e!.value as object)).toEqual(['__proto__', 'list', '__proto_'])
      expect(Object.getPrototypeOf(e!.value)).toBe(Object.prototype)
      expect(({} as Record<string, unknown>).admin).toBeUndefined()
    })

    it('versions grow across sessions; the later write wins under lww', async () => {
      const site = await open()
      const a = site.session()
      const b = site.session()
      const v1 = await a.put('k', 1)
      const v2 = await b.put('k', 2)
      expect(compareVersions(v2, v1)).toBe(1)
      expect((await a.get('k'))!.value).toBe(2)
    })

    it("runs a session's operations in call order without awaits", async () => {
      const site = await open()
      const s = site.session()
      const ops = [s.put('k', 1), s.get('k'), s.put('k', 2), s.get('k'), s.delete('k'), s.get('k')]
      const r = await Promise.all(ops)
      expect((r[1] as { value: number }).value).toBe(1)
      expect((r[3] as { value: number }).value).toBe(2)
      expect(r[5]).toBeUndefined()
    })

    it('rejects bad input with typed errors and leaves the store unchanged', async () => {
      const site = await open({ maxValueBytes: 1000 })
      const s = site.session()
      await s.put('k', 'original')
      class Thing {
        x = 1
      }
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      for (const key of ['', 42, null, undefined, 'x'.repeat(1025), 'é'.repeat(513), '\ud800']) await expectCode(s.put(key as string, 1), 'INVALID_KEY')
      for (const value of [undefined, () => 1, Symbol('s'), new Thing(), cyclic, NaN, Infinity, -Infinity, 10n, new Map(), new Set(), [1, , 3], { a: undefined }, new Date(NaN), new Float32Array(2)]) {
        await expectCode(s.put('k', value as never), 'INVALID_VALUE')
      }
      await expectCode(s.put('k', 'x'.repeat(2000)), 'VALUE_TOO_LARGE')
      await expectCode(s.write([{ key: 'a', value: 1 }, { key: 'b', value: NaN }]), 'INVALID_VALUE')
      await expectCode(s.write([{ key: 'a', value: 1 }, { key: 'a', value: 2 }]), 'INVALID_ARGUMENT')
      await expectCode(s.getMany(['ok', ''] as string[]), 'INVALID_KEY')
      expect((await s.get('k'))!.value).toBe('original')
      expect(await s.get('a')).toBeUndefined()
      expect('x'.repeat(1024).length).toBe(1024)
      await s.put('x'.repeat(1024), 'max-size key is fine')
    })

    it('validates openSite options', async () => {
      for (const o of [{ id: 'Bad Id' }, { id: '' }, { id: 'a', shards: 0 }, { id: 'a', shards: 65 }, { id: 'a', shards: 1.5 }, { id: 'a', durability: 'sometimes' }, { id: 'a', conflicts: 'first-wins' }, { id: 'a', network: {} }, { id: 'a', maxValueBytes: -1 }]) {
        await expectCode(createSite({ storage, ...o } as never), 'INVALID_OPTIONS')
      }
      await expectCode(createSite(undefined as never), 'INVALID_OPTIONS')
    })

    it('write() is atomic across shards and shares one version', async () => {
      const site = await open({ shards: 8 })
      const s = site.session()
      const ops = Array.from({ length: 40 }, (_, i) => ({ key: `tx/${i}`, value: i }))
      const v = await s.write(ops)
      const m = await site.session().getMany(ops.map((o) => o.key))
      expect(m.size).toBe(40)
      for (const e of m.values()) expect(e.version).toEqual(v)
      await s.write([{ key: 'tx/0', delete: true }, { key: 'tx/1', value: 'one' }])
      expect(await s.get('tx/0')).toBeUndefined()
      expect((await s.get('tx/1'))!.value).toBe('one')
    })

    it('continues a session elsewhere with its context; bad tokens are INVALID_CONTEXT', async () => {
      const site = await open()
      const s = site.session()
      await s.put('a', 1)
      const s2 = site.session({ context: s.context(), waitMs: 10 })
      expect((await s2.get('a'))!.value).toBe(1)
      expect(() => site.session({ context: 'not-a-token' })).toThrow(expect.objectContaining({ code: 'INVALID_CONTEXT' }))
    })

    it('a context with dependencies this site has never seen is CONTEXT_UNAVAILABLE, and the session stays usable', async () => {
      const other = await createSite({ id: 'lyon', storage })
      sites.push(other)
      const so = other.session()
      await so.put('x', 1)
      const s = (await open()).session({ context: so.context(), waitMs: 30 })
      await expectCode(s.get('x'), 'CONTEXT_UNAVAILABLE')
      await expectCode(s.put('y', 1), 'CONTEXT_UNAVAILABLE')
    })

    it('CLOSED after close, for sites and sessions', async () => {
      const site = await open()
      const s = site.session()
      await s.put('k', 1)
      await site.close()
      await site.close() // idempotent
      await expectCode(s.get('k'), 'CLOSED')
      await expectCode(s.put('k', 2), 'CLOSED')
      expect(() => site.session()).toThrow(expect.objectContaining({ code: 'CLOSED' }))
    })

    it('secondary indexes follow every change and scan across shards in order', async () => {
      const site = await open({ shards: 4 })
      const s = site.session()
      await s.put('vm/1', { host: 'h2' })
      await site.ensureIndex({ name: 'host', prefix: 'vm/', fingerprint: 'v1', terms: (_k, e) => (e ? [String((e.value as { host: string }).host)] : []) })
      for (let i = 2; i <= 30; i++) await s.put(`vm/${i}`, { host: `h${i % 3}` })
      await s.put('vm/3', { host: 'h9' })
      await s.delete('vm/4')
      const all: Array<{ term: string; key: string }> = []
      for await (const x of site.scanIndex('host')) all.push(x)
      const expected: Array<{ term: string; key: string }> = []
      for (let i = 1; i <= 30; i++) {
        if (i === 4) continue
        expected.push({ term: i === 1 ? 'h2' : i === 3 ? 'h9' : `h${i % 3}`, key: `vm/${i}` })
      }
      expected.sort((a, b) => (a.term < b.term ? -1 : a.term > b.term ? 1 : a.key < b.key ? -1 : 1))
      expect(all).toEqual(expected)
      const h1: string[] = []
      for await (const x of site.scanIndex('host', { gte: 'h1', lte: 'h1' })) h1.push(x.key)
      expect(h1).toEqual(expected.filter((x) => x.term === 'h1').map((x) => x.key))
      const rev: string[] = []
      for await (const x of site.scanIndex('host', { reverse: true, limit: 3 })) rev.push(x.key)
      expect(rev).toEqual(expected.slice(-3).reverse().map((x) => x.key))
      const gt: string[] = []
      for await (const x of site.scanIndex('host', { gt: 'h2' })) gt.push(x.term)
      expect(gt).toEqual(['h9'])
      const keys: string[] = []
      for await (const k of site.scanKeys('vm/', { limit: 5 })) keys.push(k)
      expect(keys).toEqual(['vm/1', 'vm/10', 'vm/11', 'vm/12', 'vm/13'])
    })
  })
}

describe('site on LevelDB', () => {
  it('reopening the same dir resumes its data; a second opener gets LOCKED', async () => {
    const dir = tmp()
    const a = await createSite({ id: 'paris', dir })
    const s = a.session()
    for (let i = 0; i < 50; i++) await s.put(`k${i}`, i)
    await s.write([{ key: 'tx1', value: 1 }, { key: 'tx2', value: 2 }])
    await expectCode(createSite({ id: 'paris', dir }), 'LOCKED')
    const v = await s.put('last', 'x')
    await a.close()
    const b = await createSite({ id: 'paris', dir })
    sites.push(b)
    const m = await b.session().getMany(['k0', 'k49', 'tx1', 'tx2', 'last'])
    expect([...m.values()].map((e) => e.value)).toEqual([0, 49, 1, 2, 'x'])
    // The clock continues above what was written before.
    expect(compareVersions(await b.session().put('last', 'y'), v)).toBe(1)
  })

  it('refuses to reopen a dir with another id or shard count', async () => {
    const dir = tmp()
    const a = await createSite({ id: 'paris', dir, shards: 4 })
    await a.close()
    await expectCode(createSite({ id: 'paris', dir, shards: 8 }), 'INVALID_OPTIONS')
    await expectCode(createSite({ id: 'lyon', dir, shards: 4 }), 'INVALID_OPTIONS')
  })
})
