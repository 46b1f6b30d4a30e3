import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { allFixtures, manualClock, type Fixture } from './fixtures.js'
import { Counter, Item, item, models, Owner, T0, Tag } from './models.js'
import { CausewayError, defineModel } from '../src/index.js'

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p)
    return undefined
  } catch (e) {
    if (e instanceof CausewayError) return e.code
    throw e
  }
}

describe.each(allFixtures)('repository on %s', (_name, factory) => {
  let fx: Fixture
  const clock = manualClock(T0 + 1_000_000)
  beforeEach(async () => {
    fx = await factory(models, { clock })
  })
  afterEach(async () => {
    await fx.close()
  })
  const items = () => fx.db.repository(Item)

  it('round-trips every column type', async () => {
    const at = new Date(T0 + 1234)
    const inserted = await items().insert({ ...item('i1'), rank: -7, score: -1.25, label: 'x', active: false, at, data: { a: [1, 'b', null, true] } })
    expect(inserted.deleted).toBe(0)
    const r = await (await fx.read()).repository(Item).findOne({ id: 'i1' })
    expect(r).toEqual({ id: 'i1', owner: 'alice', rank: -7, score: -1.25, label: 'x', active: false, at, data: { a: [1, 'b', null, true] }, deleted: 0, deleted_at: null })
    expect(r!.at).toBeInstanceOf(Date)
    expect(await (await fx.read()).repository(Item).findOne({ id: 'nope' })).toBeUndefined()
  })

  it('rejects bad input with stable codes and writes nothing', async () => {
    await items().insert(item('ok'))
    expect(await codeOf(items().insert({ ...item('x'), bogus: 1 } as never))).toBe('INVALID_ROW')
    expect(await codeOf(items().insert({ ...item('x'), rank: 1.5 }))).toBe('INVALID_ROW')
    expect(await codeOf(items().insert({ ...item('x'), at: '2020-01-01' } as never))).toBe('INVALID_ROW')
    expect(await codeOf(items().insert({ ...item('x'), owner: null } as never))).toBe('INVALID_ROW')
    const { owner: _o, ...noOwner } = item('x')
    expect(await codeOf(items().insert(noOwner as never))).toBe('INVALID_ROW')
    expect(await codeOf(items().insertMany([item('y'), { ...item('z'), score: 'high' } as never]))).toBe('INVALID_ROW')
    expect(await codeOf(items().insertMany([item('y'), item('ok')]))).toBe('CONFLICT')
    expect(await codeOf(items().insert(item('ok')))).toBe('CONFLICT')
    expect(await codeOf(items().find({ where: { nope: 1 } as never }))).toBe('INVALID_QUERY')
    expect(await codeOf(items().find({ where: { rank: { like: 1 } } as never }))).toBe('INVALID_QUERY')
    expect(await codeOf(items().find({ where: { rank: 'one' } as never }))).toBe('INVALID_QUERY')
    expect(await codeOf(items().find({ orderBy: [['nope', 'asc']] as never }))).toBe('INVALID_QUERY')
    expect(await codeOf(items().find({ limit: -1 }))).toBe('INVALID_QUERY')
    expect(await codeOf(items().find({ with: ['nope'] as never }))).toBe('INVALID_QUERY')
    expect(await codeOf(items().update({ id: 'ok' }, { id: 'other' }))).toBe('INVALID_ROW')
    expect(await codeOf(items().update({ id: 'ok' }, { rank: 'x' } as never))).toBe('INVALID_ROW')
    expect(await codeOf(items().update({ id: 'ok' }, { nope: 1 } as never))).toBe('INVALID_ROW')
    const Stranger = defineModel({ table: 'strangers', primaryKey: 'id', columns: { id: 'string' } })
    expect(await codeOf(() => fx.db.repository(Stranger))).toBe('INVALID_MODEL')
    const r = await fx.read()
    expect((await r.repository(Item).find()).map((x) => x.id)).toEqual(['ok'])
    expect((await r.repository(Item).findOne({ id: 'ok' }))!.rank).toBe(1)
  })

  it('filters with eq, in, ranges and ne, with SQL-like null handling', async () => {
    await items().insertMany([
      item('a', { rank: null, label: null }),
      item('b', { rank: 1, label: 'x' }),
      item('c', { rank: 2, label: 'y', owner: 'bob' }),
      item('d', { rank: 3, label: null, owner: 'bob' }),
      item('e', { rank: -4, label: 'x' }),
    ])
    const r = (await fx.read()).repository(Item)
    const ids = async (where: Record<string, unknown>) => (await r.find({ where: where as never })).map((x) => x.id)
    expect(await ids({ rank: null })).toEqual(['a'])
    expect(await ids({ id: null })).toEqual([])
    expect(await ids({ id: { in: [null, 'b'] } })).toEqual(['b'])
    expect(await ids({ owner: null })).toEqual([])
    expect(await ids({ rank: { ne: null } })).toEqual(['b', 'c', 'd', 'e'])
    expect(await ids({ label: { ne: 'x' } })).toEqual(['a', 'c', 'd'])
    expect(await ids({ label: 'x' })).toEqual(['b', 'e'])
    expect(await ids({ rank: { in: [1, 3, 99] } })).toEqual(['b', 'd'])
    expect(await ids({ rank: { in: [null, 2] } })).toEqual(['a', 'c'])
    expect(await ids({ rank: { in: [] } })).toEqual([])
    expect(await ids({ rank: { gt: 1 } })).toEqual(['c', 'd'])
    expect(await ids({ rank: { gte: 1, lt: 3 } })).toEqual(['b', 'c'])
    expect(await ids({ rank: { lte: 1 } })).toEqual(['b', 'e'])
    expect(await ids({ owner: 'bob', rank: { gt: 2 } })).toEqual(['d'])
    expect(await ids({ owner: 'bob', label: null })).toEqual(['d'])
    expect(await ids({ score: { gt: 0 }, active: true })).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(await ids({ at: { gte: new Date(T0) } })).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(await ids({ at: { gt: new Date(T0) } })).toEqual([])
    expect(await r.count({ owner: 'bob' })).toBe(2)
    expect(await r.count()).toBe(5)
    expect(await r.count({ label: null })).toBe(2)
  })

  it('orders with ties broken by primary key, NULLS FIRST ascending and LAST descending', async () => {
    await items().insertMany([
      item('e', { rank: 2 }),
      item('a', { rank: null }),
      item('d', { rank: 1 }),
      item('b', { rank: 2 }),
      item('c', { rank: null }),
      item('f', { rank: 1, owner: 'bob' }),
    ])
    const r = (await fx.read()).repository(Item)
    const ids = async (q: object) => (await r.find(q as never)).map((x) => x.id)
    expect(await ids({ orderBy: [['rank', 'asc']] })).toEqual(['a', 'c', 'd', 'f', 'b', 'e'])
    expect(await ids({ orderBy: [['rank', 'desc']] })).toEqual(['e', 'b', 'f', 'd', 'c', 'a'])
    expect(await ids({ orderBy: [['rank', 'desc'], ['id', 'asc']] })).toEqual(['b', 'e', 'd', 'f', 'a', 'c'])
    expect(await ids({ orderBy: [['owner', 'desc'], ['rank', 'asc']] })).toEqual(['f', 'a', 'c', 'd', 'b', 'e'])
    expect(await ids({ orderBy: [['rank', 'asc']], limit: 2, offset: 3 })).toEqual(['f', 'b'])
    expect(await ids({ orderBy: ['id'], offset: 4 })).toEqual(['e', 'f'])
    expect(await ids({ where: { owner: 'alice' }, orderBy: [['rank', 'desc']], limit: 3 })).toEqual(['e', 'b', 'd'])
    expect(await ids({ where: { rank: { gte: 1 } }, orderBy: [['rank', 'asc']], limit: 3 })).toEqual(['d', 'f', 'b'])
    expect(await ids({ limit: 0 })).toEqual([])
  })

  it('keyset pagination neither skips nor repeats rows while rows are inserted', async () => {
    const initial = Array.from({ length: 23 }, (_, i) => item(`r${String(i).padStart(2, '0')}`, { rank: i % 5 === 0 ? null : i % 7 }))
    await items().insertMany(initial)
    for (const dir of ['asc', 'desc'] as const) {
      const r = (await fx.read()).repository(Item)
      const seen: string[] = []
      let after: Record<string, unknown> | undefined
      let added = 0
      for (;;) {
        const page = await r.find({ orderBy: [['rank', dir]], limit: 4, after: after as never })
        if (!page.length) break
        seen.push(...page.map((x) => x.id))
        after = page[page.length - 1]
        // A concurrent writer adds rows while the reader pages (on the writing site).
        await items().insert(item(`${dir}-new${added++}`, { rank: added % 4 }))
      }
      const before = initial.map((x) => x.id)
      expect(new Set(seen).size).toBe(seen.length)
      for (const id of before) expect(seen).toContain(id)
      // The result is in order.
      const ranks = (await r.find({ where: { id: { in: seen } }, orderBy: [['rank', dir]] })).map((x) => x.id)
      expect(seen.filter((id) => ranks.includes(id))).toEqual(ranks.filter((id) => seen.includes(id)))
    }
  })

  it('keyset pagination over a compound order with an equality filter', async () => {
    await items().insertMany(Array.from({ length: 15 }, (_, i) => item(`k${i}`, { owner: i % 2 ? 'bob' : 'alice', rank: i % 3 })))
    const r = (await fx.read()).repository(Item)
    const all = (await r.find({ where: { owner: 'bob' }, orderBy: [['rank', 'desc']] })).map((x) => x.id)
    const pages: string[] = []
    let after: Record<string, unknown> | undefined
    for (;;) {
      const page = await r.find({ where: { owner: 'bob' }, orderBy: [['rank', 'desc']], limit: 2, after: after as never })
      if (!page.length) break
      pages.push(...page.map((x) => x.id))
      after = page[page.length - 1]
    }
    expect(pages).toEqual(all)
    expect(all.length).toBe(7)
  })

  it('update returns rows changed; compare-and-swap succeeds once', async () => {
    await items().insertMany([item('a', { rank: 1 }), item('b', { rank: 1 }), item('c', { rank: 2 })])
    expect(await items().update({ rank: 1 }, { label: 'one' })).toBe(2)
    expect(await items().update({ id: 'zz' }, { label: 'none' })).toBe(0)
    expect(await items().update({ id: 'a' }, { label: 'A' }, { expect: { label: 'one' } })).toBe(1)
    expect(await items().update({ id: 'a' }, { label: 'B' }, { expect: { label: 'one' } })).toBe(0)
    expect(await items().update({ id: 'c' }, { label: 'C' }, { expect: { label: null } })).toBe(1)
    // Concurrent CAS on one row from one site: exactly one wins.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => items().update({ id: 'b' }, { rank: 100 + i }, { expect: { rank: 1 } })),
    )
    expect(results.reduce((a, b) => a + b, 0)).toBe(1)
    const r = (await fx.read()).repository(Item)
    expect((await r.find({ orderBy: ['id'] })).map((x) => [x.id, x.label])).toEqual([
      ['a', 'A'],
      ['b', 'one'],
      ['c', 'C'],
    ])
    expect((await r.findOne({ id: 'b' }))!.rank).toBeGreaterThanOrEqual(100)
  })

  it('soft delete hides rows unless asked for, and stamps deleted_at from the injected clock', async () => {
    await items().insertMany([item('a'), item('b'), item('c', { owner: 'bob' })])
    expect(await items().softDelete({ id: 'b' })).toBe(1)
    expect(await items().softDelete({ id: 'b' })).toBe(0)
    const r = (await fx.read()).repository(Item)
    expect((await r.find()).map((x) => x.id)).toEqual(['a', 'c'])
    expect(await r.findOne({ id: 'b' })).toBeUndefined()
    const b = await r.findOne({ id: 'b' }, { withDeleted: true })
    expect(b!.deleted).toBe(1)
    expect(b!.deleted_at).toEqual(new Date(clock.nowMs()))
    expect(await r.count()).toBe(2)
    expect(await r.count({}, { withDeleted: true })).toBe(3)
    expect(await items().update({ id: 'b' }, { label: 'x' })).toBe(0)
    expect(await items().delete({ id: 'b' })).toBe(0)
    expect(await items().delete({ id: 'b' }, { withDeleted: true })).toBe(1)
    expect(await (await fx.read()).repository(Item).count({}, { withDeleted: true })).toBe(2)
  })

  it('hard delete removes rows; a deleted key can be inserted again', async () => {
    await items().insertMany([item('a'), item('b', { owner: 'bob' }), item('c', { owner: 'bob' })])
    expect(await items().delete({ owner: 'bob' })).toBe(2)
    let r = (await fx.read()).repository(Item)
    expect((await r.find()).map((x) => x.id)).toEqual(['a'])
    expect(await r.find({ where: { owner: 'bob' } })).toEqual([])
    await items().insert(item('b', { owner: 'carol', rank: 9 }))
    r = (await fx.read()).repository(Item)
    expect(await r.findOne({ id: 'b' })).toMatchObject({ owner: 'carol', rank: 9, label: null })
    expect((await r.find({ where: { owner: 'carol' } })).map((x) => x.id)).toEqual(['b'])
  })

  it('transactions commit all writes together, or none', async () => {
    await fx.db.transaction(async (tx) => {
      await tx.repository(Item).insert(item('t1'))
      await tx.repository(Tag).insert({ item_id: 't1', name: 'red' })
      // Read-your-writes inside the transaction.
      expect((await tx.repository(Item).findOne({ id: 't1' }))!.owner).toBe('alice')
      expect(await tx.repository(Item).update({ id: 't1' }, { label: 'in-tx' })).toBe(1)
      expect((await tx.repository(Item).find({ where: { label: 'in-tx' } })).map((x) => x.id)).toEqual(['t1'])
    })
    await expect(
      fx.db.transaction(async (tx) => {
        await tx.repository(Item).insert(item('t2'))
        await tx.repository(Item).update({ id: 't1' }, { label: 'rolled back' })
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    const r = await fx.read()
    expect((await r.repository(Item).find()).map((x) => [x.id, x.label])).toEqual([['t1', 'in-tx']])
    expect((await r.repository(Tag).find()).map((x) => x.name)).toEqual(['red'])
  })

  it('refuses the outer database inside its own transaction instead of deadlocking', async () => {
    const err = await codeOf(
      fx.db.transaction(async (tx) => {
        await tx.repository(Item).insert(item('t1'))
        await fx.db.repository(Item).findOne({ id: 't1' })
      }),
    )
    expect(err).toBe('INVALID_ARGUMENT')
    expect(await codeOf(fx.db.transaction(async () => fx.db.transaction(async () => 1)))).toBe('INVALID_ARGUMENT')
    // Nothing of the failed transaction was written; the database is usable afterwards.
    expect(await fx.db.repository(Item).count()).toBe(0)
    // Concurrent transactions on the same row serialize their writes (compare-and-swap keeps a counter exact).
    await fx.db.repository(Counter).insert({ id: 1, n: 0 })
    await Promise.all(
      Array.from({ length: 5 }, () =>
        fx.db.transaction(async (tx) => {
          for (;;) {
            const c = (await tx.repository(Counter).findOne({ id: 1 }))!
            if ((await tx.repository(Counter).update({ id: 1 }, { n: c.n + 1 }, { expect: { n: c.n } })) === 1) return
          }
        }),
      ),
    )
    expect((await (await fx.read()).repository(Counter).findOne({ id: 1 }))!.n).toBe(5)
  })

  it('runs concurrent calls inside one transaction and refuses a finished transaction', async () => {
    await items().insert(item('a', { rank: 1 }))
    let leaked: { repository: typeof fx.db.repository } | undefined
    await fx.db.transaction(async (tx) => {
      leaked = tx
      const r = tx.repository(Item)
      const counts = await Promise.all([r.update({ id: 'a' }, { label: 'x' }), r.update({ id: 'a' }, { score: 9 }), r.insert(item('b'))])
      expect(counts.slice(0, 2)).toEqual([1, 1])
    })
    expect(await codeOf(leaked!.repository(Item).findOne({ id: 'a' }))).toBe('INVALID_ARGUMENT')
    const r = (await fx.read()).repository(Item)
    expect(await r.findOne({ id: 'a' })).toMatchObject({ label: 'x', score: 9 })
    expect(await r.count()).toBe(2)
    // The rows are not left locked.
    expect(await items().update({ id: 'a' }, { label: 'y' })).toBe(1)
  })

  it('eager-loads relations with one batched lookup each', async () => {
    await fx.db.repository(Owner).insertMany([
      { name: 'alice', region: 'eu' },
      { name: 'bob', region: 'us' },
    ])
    await items().insertMany([item('a'), item('b', { owner: 'bob' }), item('c', { owner: 'nobody' })])
    const tags = fx.db.repository(Tag)
    await tags.insertMany([
      { item_id: 'a', name: 'x' },
      { item_id: 'a', name: 'y' },
      { item_id: 'b', name: 'z' },
    ])
    const r = (await fx.read()).repository(Item)
    const rows = await r.find({ orderBy: ['id'], with: ['tags', 'ownerRow'] })
    expect(rows.map((x) => [x.id, x.tags.map((t) => t.name), x.ownerRow?.region ?? null])).toEqual([
      ['a', ['x', 'y'], 'eu'],
      ['b', ['z'], 'us'],
      ['c', [], null],
    ])
    const one = await r.findOne({ id: 'b' }, { with: ['tags'] })
    expect(one!.tags).toHaveLength(1)
  })

  it('generates per-site sequence ids and supports int primary keys in numeric order', async () => {
    const t = await fx.db.repository(Tag).insertMany([
      { item_id: 'a', name: '1' },
      { item_id: 'a', name: '2' },
    ])
    expect(t[0]!.id).toMatch(/^a-0*1$/)
    expect(t[1]!.id).toMatch(/^a-0*2$/)
    const counters = fx.db.repository(Counter)
    await counters.insertMany([10, -3, 2, 0, 1e9, -1e9].map((id) => ({ id, n: id % 2 })))
    const r = (await fx.read()).repository(Counter)
    expect((await r.find()).map((x) => x.id)).toEqual([-1e9, -3, 0, 2, 10, 1e9])
    expect((await r.find({ where: { id: { in: [2, 10, 99] } } })).map((x) => x.id)).toEqual([2, 10])
    expect((await r.find({ orderBy: [['n', 'desc']], limit: 2 })).map((x) => x.id)).toEqual([1e9, 10])
    expect((await r.find({ orderBy: [['n', 'asc']], limit: 2 })).map((x) => x.id)).toEqual([-3, -1e9])
    expect(await r.homeSite(2)).toBe('a')
    expect(await r.homeSite(3)).toBeUndefined()
  })

  it('compiles queries to a frozen, serialisable operation tree', () => {
    const node = items().compileFind({ where: { owner: 'bob', rank: { in: [1, 2] }, at: { gte: new Date(T0) } }, orderBy: [['rank', 'desc']], limit: 5 })
    expect(Object.isFrozen(node)).toBe(true)
    expect(JSON.parse(JSON.stringify(node))).toEqual({
      kind: 'select',
      table: 'items',
      where: {
        kind: 'and',
        items: [
          { kind: 'cmp', column: 'owner', op: 'eq', value: 'bob' },
          { kind: 'cmp', column: 'rank', op: 'in', value: [1, 2] },
          { kind: 'cmp', column: 'at', op: 'gte', value: T0 },
          { kind: 'cmp', column: 'deleted', op: 'eq', value: 0 },
        ],
      },
      orderBy: [
        { column: 'rank', direction: 'desc' },
        { column: 'id', direction: 'desc' },
      ],
      limit: 5,
      offset: 0,
      after: null,
    })
  })
})
