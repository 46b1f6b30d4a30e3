import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import { createSite } from '../src/site.js'
import type { ShardDb, Site, StorageFactory } from '../src/api.js'
import { CausewayError } from '../src/errors.js'
import { cmpUtf8 } from '../src/scan.js'
import { openStorage, resolveStorage, type StorageOption } from '../src/storage/index.js'

/**
 * One compliance suite for every storage backend: what the engine relies on from the databases
 * behind `openSite({ storage })`, and the checks the site makes when it opens them.
 */

const dirs: string[] = []
const open: Array<Site | ShardDb> = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close().catch(() => {})
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'cw-storage-'))
  dirs.push(d)
  return d
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  )
  expect(e, `expected ${code}`).toBeInstanceOf(CausewayError)
  expect((e as CausewayError).code).toBe(code)
}

const classicFactory: StorageFactory = Object.assign(
  (i: number, dir: string | undefined) => new ClassicLevel(join(dir!, `custom-${i}`), { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb,
  { supports: { locking: true } },
)
const memoryFactory: StorageFactory = () => new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb

interface Backend {
  name: string
  option: StorageOption
  persistent: boolean
  locking: boolean
}
const backends: Backend[] = [
  { name: "'level'", option: 'level', persistent: true, locking: true },
  { name: "'memory'", option: 'memory', persistent: false, locking: false },
  { name: 'a custom classic-level factory (supports: { locking: true })', option: classicFactory, persistent: true, locking: true },
  { name: 'a custom memory-level factory (manifest from db.supports)', option: memoryFactory, persistent: false, locking: false },
]

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

function storageCompliance(b: Backend): void {
  describe(`storage compliance: ${b.name}`, () => {
    const dbs = async (shards = 1, id = 'paris', dir = tmp()): Promise<ShardDb[]> => {
      const st = await resolveStorage(b.option, id, dir)
      const out = await openStorage(st, { id, shards })
      open.push(...out)
      expect(st.supports).toEqual({ persistent: b.persistent, locking: b.locking })
      return out
    }

    it('declares its manifest', async () => {
      const st = await resolveStorage(b.option, 'paris', tmp())
      // A custom factory's manifest is complete once it has made a db (it may come from db.supports).
      const [db] = await openStorage(st, { id: 'paris', shards: 1 })
      open.push(db!)
      expect(st.supports).toEqual({ persistent: b.persistent, locking: b.locking })
    })

    it('a batch is atomic: written whole, or (when building it fails) not at all', async () => {
      const [db] = await dbs()
      const ok = db!.batch()
      for (let i = 0; i < 100; i++) ok.put(`k!${i}`, bytes(String(i)))
      ok.del('k!7')
      await ok.write()
      expect(text(await db!.get('k!99'))).toBe('99')
      expect(await db!.get('k!7')).toBeUndefined()
      const bad = db!.batch()
      bad.put('k!new', bytes('x'))
      bad.del('k!1')
      expect(() => bad.put(undefined as unknown as string, bytes('y'))).toThrow()
      await bad.close()
      expect(await db!.get('k!new')).toBeUndefined()
      expect(text(await db!.get('k!1'))).toBe('1')
    })

    it('iterates in UTF-8 byte order with ranges, reverse, limit and nextv', async () => {
      const [db] = await dbs()
      const keys = ['a!', 'a!a', 'a!b', 'a!\u00e9', 'a!\uffff', 'a!\u{1F600}', 'a"', 'b!x']
      await db!.batch(keys.map((k) => ({ type: 'put' as const, key: k, value: bytes(k) })))
      const sorted = [...keys].sort(cmpUtf8)
      // (below x!: a persistent custom storage keeps the site guard record there)
      expect(await db!.keys({ lt: 'x!' }).all()).toEqual(sorted)
      expect(await db!.keys({ gte: 'a!', lt: 'a"' }).all()).toEqual(sorted.filter((k) => k >= 'a!' && k.startsWith('a!')))
      expect(await db!.keys({ gt: 'a!a', lte: 'a!\u00e9' }).all()).toEqual(['a!b', 'a!\u00e9'])
      expect(await db!.keys({ gte: 'a!', lt: 'a"', reverse: true, limit: 2 }).all()).toEqual(['a!\u{1F600}', 'a!\uffff'])
      const it = db!.keys({ gte: 'a!', lt: 'x!' })
      expect(await it.nextv(3)).toEqual(sorted.slice(0, 3))
      expect(await it.nextv(100)).toEqual(sorted.slice(3))
      expect(await it.nextv(100)).toEqual([])
      await it.close()
      const entries = await db!.iterator({ gte: 'b!', limit: 1 }).all()
      expect(entries.map(([k, v]) => [k, text(v)])).toEqual([['b!x', 'b!x']])
      await db!.clear({ gt: 'a!', lte: 'a!b' })
      expect(await db!.keys({ lt: 'a!c' }).all()).toEqual(['a!'])
    })

    it('closing is idempotent (a db, and a site)', async () => {
      const [db] = await dbs()
      await db!.close()
      await db!.close()
      const site = await createSite({ id: 'paris', storage: b.option, dir: tmp() })
      await site.close()
      await site.close()
    })

    if (b.persistent) {
      it('reopening keeps the data', async () => {
        const dir = tmp()
        const a = await createSite({ id: 'paris', storage: b.option, dir, shards: 3 })
        await a.session().put('vm/1', { n: 1 })
        await a.session().write([{ key: 'vm/2', value: 2 }, { key: 'vm/3', value: 3 }])
        await a.close()
        const again = await createSite({ id: 'paris', storage: b.option, dir, shards: 3 })
        open.push(again)
        const m = await again.session().getMany(['vm/1', 'vm/2', 'vm/3'])
        expect([...m.values()].map((e) => e.value)).toEqual([{ n: 1 }, 2, 3])
      })

      it('guards the site id and shard count', async () => {
        const dir = tmp()
        const a = await createSite({ id: 'paris', storage: b.option, dir, shards: 4 })
        await a.close()
        await expectCode(createSite({ id: 'paris', storage: b.option, dir, shards: 8 }), 'INVALID_OPTIONS')
        await expectCode(createSite({ id: 'paris', storage: b.option, dir, shards: 2 }), 'INVALID_OPTIONS')
        await expectCode(createSite({ id: 'lyon', storage: b.option, dir, shards: 4 }), 'INVALID_OPTIONS')
        const same = await createSite({ id: 'paris', storage: b.option, dir, shards: 4 })
        open.push(same)
      })
    } else {
      it('keeps nothing across opens, so nothing is guarded', async () => {
        const dir = tmp()
        const a = await createSite({ id: 'paris', storage: b.option, dir, shards: 4 })
        await a.session().put('k', 1)
        await a.close()
        const other = await createSite({ id: 'lyon', storage: b.option, dir, shards: 8 })
        open.push(other)
        expect(await other.session().get('k')).toBeUndefined()
      })
    }

    if (b.locking) {
      it('a second opener gets LOCKED', async () => {
        const dir = tmp()
        const a = await createSite({ id: 'paris', storage: b.option, dir })
        open.push(a)
        await expectCode(createSite({ id: 'paris', storage: b.option, dir }), 'LOCKED')
        await a.session().put('still', 'writable')
      })
    }
  })
}

for (const b of backends) storageCompliance(b)
