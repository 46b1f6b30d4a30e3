import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openSite } from 'causeway'
import { createSimNetwork, type SimNetwork } from '@causeway/sim'
import type { Site } from '@causeway/core'
import { CausewayError, defineModel, openDatabase, ormConflicts, rowMerge, type Database } from '../src/index.js'
import { Item, item, models, Tag } from './models.js'

type Pair = { net: SimNetwork; a: Site; b: Site; dbA: Database; dbB: Database }
const open: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c()
})

async function pair(latencyMs = 20): Promise<Pair> {
  const net = createSimNetwork({ latencyMs, jitterMs: 3, seed: 3 })
  const a = await openSite({ id: 'a', storage: 'memory', conflicts: ormConflicts(models), network: net.adapter('a'), heartbeatMs: 50 })
  const b = await openSite({ id: 'b', storage: 'memory', conflicts: ormConflicts(models), network: net.adapter('b'), heartbeatMs: 50 })
  const dbA = await openDatabase({ backend: 'causeway', site: a, models })
  const dbB = await openDatabase({ backend: 'causeway', site: b, models })
  open.push(async () => {
    await a.close()
    await b.close()
    await net.close()
  })
  return { net, a, b, dbA, dbB }
}

async function codeOf(p: Promise<unknown>): Promise<CausewayError | undefined> {
  try {
    await p
    return undefined
  } catch (e) {
    if (e instanceof CausewayError) return e
    throw e
  }
}

describe('causeway backend: merge and replication', () => {
  it('keeps concurrent updates of different columns made at different sites', async () => {
    const { net, dbA, dbB } = await pair()
    await dbA.repository(Item).insert(item('vm1', { rank: 1, label: 'old' }))
    await net.settle()
    net.partition(['a'], ['b'])
    expect(await dbA.repository(Item).update({ id: 'vm1' }, { label: 'from-a' })).toBe(1)
    expect(await dbB.repository(Item).update({ id: 'vm1' }, { rank: 42 })).toBe(1)
    // Both sides keep serving during the partition.
    expect((await dbA.repository(Item).findOne({ id: 'vm1' }))!.rank).toBe(1)
    expect((await dbB.repository(Item).findOne({ id: 'vm1' }))!.label).toBe('old')
    net.heal()
    await net.settle()
    for (const db of [dbA, dbB]) {
      expect(await db.repository(Item).findOne({ id: 'vm1' })).toMatchObject({ label: 'from-a', rank: 42 })
      // The indexes follow the merged row.
      expect((await db.repository(Item).find({ where: { rank: 42 } })).map((x) => x.id)).toEqual(['vm1'])
      expect(await db.repository(Item).find({ where: { rank: 1 } })).toEqual([])
    }
  })

  it('converges on one value when both sites update the same column', async () => {
    const { net, dbA, dbB } = await pair()
    await dbA.repository(Item).insert(item('vm1'))
    await net.settle()
    net.partition(['a'], ['b'])
    await dbA.repository(Item).update({ id: 'vm1' }, { label: 'a' })
    await dbB.repository(Item).update({ id: 'vm1' }, { label: 'b' })
    net.heal()
    await net.settle()
    const x = (await dbA.repository(Item).findOne({ id: 'vm1' }))!.label
    const y = (await dbB.repository(Item).findOne({ id: 'vm1' }))!.label
    expect(x).toBe(y)
    expect(['a', 'b']).toContain(x)
  })

  it('a hard delete wins over a concurrent update', async () => {
    const { net, dbA, dbB } = await pair()
    await dbA.repository(Item).insertMany([item('vm1', { owner: 'bob' }), item('vm2', { owner: 'bob' })])
    await net.settle()
    net.partition(['a'], ['b'])
    expect(await dbA.repository(Item).delete({ id: 'vm1' })).toBe(1)
    expect(await dbB.repository(Item).update({ id: 'vm1' }, { label: 'late', rank: 9 })).toBe(1)
    net.heal()
    await net.settle()
    for (const db of [dbA, dbB]) {
      expect(await db.repository(Item).findOne({ id: 'vm1' }, { withDeleted: true })).toBeUndefined()
      expect((await db.repository(Item).find({ where: { owner: 'bob' } })).map((x) => x.id)).toEqual(['vm2'])
      expect(await db.repository(Item).find({ where: { rank: 9 } })).toEqual([])
    }
  })

  it('soft delete and a concurrent update of another column both survive', async () => {
    const { net, dbA, dbB } = await pair()
    await dbA.repository(Item).insert(item('vm1'))
    await net.settle()
    net.partition(['a'], ['b'])
    await dbA.repository(Item).softDelete({ id: 'vm1' })
    await dbB.repository(Item).update({ id: 'vm1' }, { label: 'x' })
    net.heal()
    await net.settle()
    for (const db of [dbA, dbB]) {
      expect(await db.repository(Item).findOne({ id: 'vm1' })).toBeUndefined()
      expect(await db.repository(Item).findOne({ id: 'vm1' }, { withDeleted: true })).toMatchObject({ deleted: 1, label: 'x' })
    }
  })

  it('compare-and-swap runs only at the home site', async () => {
    const { net, dbA, dbB } = await pair()
    await dbA.repository(Item).insert(item('at-a', { rank: 1 }))
    await dbA.repository(Item).insert(item('at-b', { rank: 1 }), { home: 'b' })
    await net.settle()
    expect(await dbB.repository(Item).homeSite('at-a')).toBe('a')
    expect(await dbA.repository(Item).homeSite('at-b')).toBe('b')
    const e = await codeOf(dbB.repository(Item).update({ id: 'at-a' }, { rank: 2 }, { expect: { rank: 1 } }))
    expect(e?.code).toBe('NOT_HOME_SITE')
    expect(e?.details.homeSite).toBe('a')
    expect((e as unknown as { homeSite: string }).homeSite).toBe('a')
    expect((await codeOf(dbA.repository(Item).update({ id: 'at-b' }, { rank: 2 }, { expect: { rank: 1 } })))?.code).toBe('NOT_HOME_SITE')
    expect(await dbA.repository(Item).update({ id: 'at-a' }, { rank: 2 }, { expect: { rank: 1 } })).toBe(1)
    expect(await dbB.repository(Item).update({ id: 'at-b' }, { rank: 2 }, { expect: { rank: 1 } })).toBe(1)
    // Plain updates work anywhere.
    expect(await dbB.repository(Item).update({ id: 'at-a' }, { label: 'x' })).toBe(1)
    // CAS at the home site works during a partition too.
    net.partition(['a'], ['b'])
    expect(await dbA.repository(Item).update({ id: 'at-a' }, { rank: 3 }, { expect: { rank: 2 } })).toBe(1)
    net.heal()
    await net.settle()
    expect(await dbB.repository(Item).findOne({ id: 'at-a' })).toMatchObject({ rank: 3, label: 'x' })
    // A CAS that would touch a remote-homed row writes nothing.
    expect((await codeOf(dbB.repository(Item).update({ rank: { gte: 2 } }, { label: 'y' }, { expect: { label: 'x' } })))?.code).toBe('NOT_HOME_SITE')
    expect(await dbB.repository(Item).count({ label: 'y' })).toBe(0)
  })

  it("a transaction's writes become visible at the other site all together", async () => {
    const { net, dbA, b, dbB } = await pair(30)
    const seen: number[] = []
    const stop = b.onApplied(() => void 0)
    let polling = true
    const poll = (async () => {
      while (polling) {
        const n = (await dbB.repository(Item).count({ owner: 'tx' })) + (await dbB.repository(Tag).count({ item_id: 'tx1' }))
        seen.push(n)
        await new Promise((r) => setTimeout(r, 1))
      }
    })()
    await dbA.transaction(async (tx) => {
      await tx.repository(Item).insertMany([item('tx1', { owner: 'tx' }), item('tx2', { owner: 'tx' })])
      await tx.repository(Tag).insert({ item_id: 'tx1', name: 't' })
    })
    await net.settle()
    await new Promise((r) => setTimeout(r, 10))
    polling = false
    await poll
    stop()
    expect(seen.every((n) => n === 0 || n === 3)).toBe(true)
    expect(seen[seen.length - 1]).toBe(3)
  })

  it('sequence ids never collide across sites, even during a partition', async () => {
    const { net, dbA, dbB } = await pair()
    net.partition(['a'], ['b'])
    const made = await Promise.all([
      dbA.repository(Tag).insertMany(Array.from({ length: 20 }, (_, i) => ({ item_id: 'x', name: `a${i}` }))),
      dbB.repository(Tag).insertMany(Array.from({ length: 20 }, (_, i) => ({ item_id: 'x', name: `b${i}` }))),
    ])
    net.heal()
    await net.settle()
    const ids = made.flat().map((t) => t.id)
    expect(new Set(ids).size).toBe(40)
    expect(ids.filter((id) => id.startsWith('a-'))).toHaveLength(20)
    expect(await dbA.repository(Tag).count({ item_id: 'x' })).toBe(40)
    expect(await dbB.repository(Tag).count({ item_id: 'x' })).toBe(40)
  })
})

describe('causeway backend: setup checks and plans', () => {
  it('refuses unique indexes (not enforceable across sites without coordination)', async () => {
    const U = defineModel({ table: 'u', primaryKey: 'id', columns: { id: 'string', email: 'string' }, indexes: [{ columns: ['email'], unique: true }] })
    const site = await openSite({ id: 'u', storage: 'memory', conflicts: ormConflicts([U]) })
    open.push(() => site.close())
    const e = await codeOf(openDatabase({ backend: 'causeway', site, models: [U] }))
    expect(e?.code).toBe('INVALID_MODEL')
    expect(e?.message).toMatch(/unique/)
    // SQLite enforces it.
    const db = await openDatabase({ backend: 'sqlite', models: [U] })
    await db.repository(U).insert({ id: '1', email: 'x@y' })
    expect((await codeOf(db.repository(U).insert({ id: '2', email: 'x@y' })))?.code).toBe('CONFLICT')
    await db.close()
  })

  // Issue #8 item 6: this used to refuse a site opened without ormConflicts (INVALID_OPTIONS).
  it('needs no conflict configuration; a site opened with ormConflicts keeps the earlier layout', async () => {
    const plain = await openSite({ id: 'plain', storage: 'memory' })
    const legacy = await openSite({ id: 'legacy', storage: 'memory', conflicts: ormConflicts(models) })
    open.push(async () => {
      await plain.close()
      await legacy.close()
    })
    for (const site of [plain, legacy]) {
      const db = await openDatabase({ backend: 'causeway', site, models })
      await db.repository(Item).insert(item('vm1', { rank: 3 }))
      expect(await db.repository(Item).findOne({ id: 'vm1' })).toMatchObject({ rank: 3 })
      await db.close()
    }
    const keys = async (site: Site, prefix: string): Promise<string[]> => {
      const out: string[] = []
      for await (const k of site.scanKeys(prefix)) out.push(k)
      return out
    }
    expect(await keys(plain, '~siblings/orm/items/')).toEqual(['~siblings/orm/items/vm1'])
    expect(await keys(plain, 'items/')).toEqual([])
    expect(await keys(legacy, 'items/')).toEqual(['items/vm1'])
    expect(typeof ormConflicts(models)).toBe('object')
    expect((ormConflicts(models) as { prefixes: Record<string, unknown> }).prefixes['items/']).toBe(rowMerge)
  })

  it('answers indexed queries and eager loads with index range scans, unindexed ones with a scan', async () => {
    const site = await openSite({ id: 'p', storage: 'memory', conflicts: ormConflicts(models) })
    open.push(() => site.close())
    const db = await openDatabase({ backend: 'causeway', site, models })
    await db.repository(Item).insertMany(Array.from({ length: 30 }, (_, i) => item(`i${i}`, { owner: `o${i % 3}`, rank: i })))
    await db.repository(Tag).insertMany([{ item_id: 'i1', name: 'x' }])
    const calls: Array<{ name: string; opts: Record<string, unknown> }> = []
    const orig = site.scanIndex.bind(site)
    site.scanIndex = (name, opts) => {
      calls.push({ name, opts: { ...opts } })
      return orig(name, opts)
    }
    const rows = await db.repository(Item).find({ where: { owner: 'o1' }, orderBy: [['rank', 'desc']], limit: 2, with: ['tags'] })
    expect(rows.map((r) => r.id)).toEqual(['i28', 'i25'])
    // One ordered range scan of (owner, rank); the relation is one `in` lookup on tags(item_id):
    // a range per distinct key, all on that index, rows fetched in one getMany.
    expect([...new Set(calls.map((c) => c.name))]).toEqual(['items--1', 'tags--0'])
    expect(calls.filter((c) => c.name === 'tags--0')).toHaveLength(2)
    expect(calls[0]!.opts.reverse).toBe(true)
    calls.length = 0
    await db.repository(Item).find({ where: { score: { gt: 0 } } })
    expect(calls.map((c) => c.name)).toEqual(['items--pk'])
    expect(calls[0]!.opts.gte ?? calls[0]!.opts.gt).toBeUndefined()
    calls.length = 0
    expect(await db.repository(Item).findOne({ id: 'i3' })).toBeDefined()
    expect(calls).toEqual([])
  })

  it('works on LevelDB storage and resumes after a restart without reusing sequence ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orm-level-'))
    try {
      let site = await openSite({ id: 'lv', dir, storage: 'level', shards: 2, conflicts: ormConflicts(models) })
      let db = await openDatabase({ backend: 'causeway', site, models })
      await db.repository(Item).insertMany([item('a', { owner: 'x' }), item('b', { owner: 'y' })])
      const t1 = await db.repository(Tag).insert({ item_id: 'a', name: 'n' })
      await db.close()
      await site.close()
      site = await openSite({ id: 'lv', dir, storage: 'level', shards: 2, conflicts: ormConflicts(models) })
      db = await openDatabase({ backend: 'causeway', site, models })
      expect((await db.repository(Item).find({ where: { owner: 'y' } })).map((r) => r.id)).toEqual(['b'])
      const t2 = await db.repository(Tag).insert({ item_id: 'a', name: 'm' })
      expect(t2.id > t1.id).toBe(true)
      expect((await db.repository(Item).find({ with: ['tags'], orderBy: ['id'] }))[0]!.tags).toHaveLength(2)
      await db.close()
      await site.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
