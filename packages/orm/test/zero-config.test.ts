/**
 * Issue #8 item 6: `openDatabase({ backend: 'causeway', site, models })` on a site opened the
 * documented way (`openSite({ id, dir, network })`, no `conflicts`) must work, and every site must
 * merge rows per column without configuration — also a site that never opens the database and
 * one that receives rows before it does.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openSite } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import type { MergeFunction, Site } from '@causeway/core'
import { CausewayError, openDatabase, ormConflicts, type Database } from '../src/index.js'
import { Item, item, models } from './models.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function tmpDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'orm-zero-config-'))
  cleanups.push(() => rmSync(d, { recursive: true, force: true }))
  return d
}

async function open(site: Site): Promise<Database> {
  const db = await openDatabase({ backend: 'causeway', site, models })
  cleanups.push(() => db.close())
  return db
}

describe('causeway backend on sites opened without conflict configuration', () => {
  it('two sites converge per column after concurrent updates during a partition', async () => {
    const net = createSimNetwork({ latencyMs: 10, jitterMs: 3, seed: 11 })
    const dir = tmpDir()
    const a = await openSite({ id: 'a', dir: join(dir, 'a'), network: net.adapter('a') })
    const b = await openSite({ id: 'b', dir: join(dir, 'b'), network: net.adapter('b') })
    cleanups.push(async () => {
      await a.close()
      await b.close()
      await net.close()
    })
    const dbA = await open(a)
    const dbB = await open(b)
    await dbA.repository(Item).insert(item('vm1', { rank: 1, label: 'old' }))
    await net.settle()
    expect(await dbB.repository(Item).findOne({ id: 'vm1' })).toMatchObject({ rank: 1, label: 'old' })
    net.partition(['a'], ['b'])
    expect(await dbA.repository(Item).update({ id: 'vm1' }, { label: 'from-a' })).toBe(1)
    expect(await dbB.repository(Item).update({ id: 'vm1' }, { rank: 42 })).toBe(1)
    net.heal()
    await net.settle()
    const rowA = await dbA.repository(Item).findOne({ id: 'vm1' })
    const rowB = await dbB.repository(Item).findOne({ id: 'vm1' })
    expect(rowA).toMatchObject({ label: 'from-a', rank: 42 })
    expect(rowB).toEqual(rowA)
    for (const db of [dbA, dbB]) {
      expect((await db.repository(Item).find({ where: { rank: 42 } })).map((x) => x.id)).toEqual(['vm1'])
      expect(await db.repository(Item).find({ where: { rank: 1 } })).toEqual([])
      expect((await db.repository(Item).find({ where: { label: 'from-a' } })).map((x) => x.id)).toEqual(['vm1'])
    }
    // A later write at one site supersedes the merged versions: still one row, same everywhere.
    await dbB.repository(Item).update({ id: 'vm1' }, { label: 'after' })
    await net.settle()
    expect(await dbA.repository(Item).findOne({ id: 'vm1' })).toMatchObject({ label: 'after', rank: 42 })
  })

  it('a relay site that opens the database only afterwards sees the same merged row', async () => {
    // a - c - b: c relays every write and has not opened the database while they arrive.
    const net = createSimNetwork({ latencyMs: 5, jitterMs: 2, seed: 5 })
    const a = await openSite({ id: 'a', storage: 'memory', network: net.adapter('a', { peers: [{ site: 'c' }] }), heartbeatMs: 50 })
    const b = await openSite({ id: 'b', storage: 'memory', network: net.adapter('b', { peers: [{ site: 'c' }] }), heartbeatMs: 50 })
    const c = await openSite({ id: 'c', storage: 'memory', network: net.adapter('c', { peers: [{ site: 'a' }, { site: 'b' }] }), heartbeatMs: 50 })
    cleanups.push(async () => {
      await a.close()
      await b.close()
      await c.close()
      await net.close()
    })
    const dbA = await open(a)
    const dbB = await open(b)
    await dbA.repository(Item).insert(item('vm1', { rank: 1, label: 'old', owner: 'ann' }))
    await net.settle()
    net.partition(['a'], ['b', 'c'])
    await dbA.repository(Item).update({ id: 'vm1' }, { label: 'from-a' })
    await dbB.repository(Item).update({ id: 'vm1' }, { rank: 7, owner: 'bob' })
    net.heal()
    await net.settle()
    const dbC = await open(c)
    const rows = await Promise.all([dbA, dbB, dbC].map((db) => db.repository(Item).findOne({ id: 'vm1' })))
    expect(rows[0]).toMatchObject({ label: 'from-a', rank: 7, owner: 'bob' })
    expect(rows[1]).toEqual(rows[0])
    expect(rows[2]).toEqual(rows[0])
    for (const db of [dbA, dbB, dbC]) {
      expect((await db.repository(Item).find({ where: { owner: 'bob' } })).map((x) => x.id)).toEqual(['vm1'])
      expect(await db.repository(Item).find({ where: { owner: 'ann' } })).toEqual([])
    }
  })

  const longest: MergeFunction = function longest(x, y) {
    return JSON.stringify(x) >= JSON.stringify(y) ? x : y
  }
  for (const [name, conflicts] of [
    ['return-all', 'return-all'],
    ['a merge function', { default: longest, prefixes: { 'items/': 'lww' } }],
  ] as const) {
    it(`works whatever conflict mode the site has for other keys: ${name}`, async () => {
      const net = createSimNetwork({ latencyMs: 5, jitterMs: 1, seed: 9 })
      const a = await openSite({ id: 'a', storage: 'memory', conflicts, network: net.adapter('a'), heartbeatMs: 50 })
      const b = await openSite({ id: 'b', storage: 'memory', conflicts, network: net.adapter('b'), heartbeatMs: 50 })
      cleanups.push(async () => {
        await a.close()
        await b.close()
        await net.close()
      })
      const dbA = await open(a)
      const dbB = await open(b)
      await dbA.repository(Item).insert(item('vm1', { rank: 1, label: 'old' }))
      await net.settle()
      net.partition(['a'], ['b'])
      await dbA.repository(Item).update({ id: 'vm1' }, { label: 'x' })
      await dbB.repository(Item).update({ id: 'vm1' }, { rank: 3 })
      net.heal()
      await net.settle()
      for (const db of [dbA, dbB]) expect(await db.repository(Item).findOne({ id: 'vm1' })).toMatchObject({ label: 'x', rank: 3 })
    })
  }

  it('keeps the rows across a restart of a site opened with dir', async () => {
    const dir = tmpDir()
    let site = await openSite({ id: 'r', dir })
    let db = await openDatabase({ backend: 'causeway', site, models })
    await db.repository(Item).insert(item('vm1', { rank: 5 }))
    await db.close()
    await site.close()
    site = await openSite({ id: 'r', dir })
    cleanups.push(() => site.close())
    db = await open(site)
    expect(await db.repository(Item).findOne({ id: 'vm1' })).toMatchObject({ rank: 5 })
    expect((await db.repository(Item).find({ where: { rank: 5 } })).map((x) => x.id)).toEqual(['vm1'])
  })
})

describe('layout checks', () => {
  it('refuses to open over rows of the other layout instead of showing empty tables', async () => {
    const dir = tmpDir()
    let site = await openSite({ id: 'l', dir, conflicts: ormConflicts(models) })
    let db = await openDatabase({ backend: 'causeway', site, models })
    await db.repository(Item).insert(item('vm1'))
    await db.close()
    await site.close()
    // ormConflicts dropped from the configuration: the rows are still under items/.
    site = await openSite({ id: 'l', dir })
    let e = await openDatabase({ backend: 'causeway', site, models }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(CausewayError)
    expect((e as CausewayError).code).toBe('INVALID_OPTIONS')
    // Other data under the table's prefix (not ORM rows) does not count.
    await site.close()
    const dir2 = tmpDir()
    site = await openSite({ id: 'l', dir: dir2 })
    await site.session().put('items/not-a-row', { hello: 1 })
    db = await open(site)
    await db.repository(Item).insert(item('vm2'))
    await db.close()
    await site.close()
    // ...and the reverse: ormConflicts added after rows were written the new way.
    site = await openSite({ id: 'l', dir: dir2, conflicts: ormConflicts(models) })
    cleanups.push(() => site.close())
    e = await openDatabase({ backend: 'causeway', site, models }).catch((x: unknown) => x)
    expect((e as CausewayError).code).toBe('INVALID_OPTIONS')
  })
})

describe('the ORM treats context tokens as opaque (issue #9)', () => {
  it('no ORM source decodes or builds a CausalContext', () => {
    const src = join(__dirname, '..', 'src')
    for (const f of readdirSync(src).filter((x) => x.endsWith('.ts'))) {
      expect(readFileSync(join(src, f), 'utf8'), f).not.toMatch(/CausalContext/)
    }
  })
})
