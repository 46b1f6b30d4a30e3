import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { openSite } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import type { Site, Value } from '@causeway/core'
import { CausewayError, defineModel, openDatabase, ormConflicts, rowMerge, type Database } from '../src/index.js'
import { encodeTerm, rowKey } from '../src/encode.js'
import { rowValueOf } from '../src/merge.js'

const P = defineModel({
  table: 'p',
  primaryKey: 'id',
  columns: { id: 'string', g: 'string', n: 'int?', f: 'float', s: 'string?', b: 'bool', deleted: 'int' },
  indexes: [['g'], ['g', 'n'], ['n'], ['s'], ['b', 'f']],
  softDelete: true,
})
const models = [P]
type Row = { id: string; g: string; n: number | null; f: number; s: string | null; b: boolean }

const id = fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7')
const g = fc.constantFrom('x', 'y', 'z')
const n = fc.option(fc.integer({ min: -3, max: 3 }), { nil: null })
const f = fc.constantFrom(-1.5, -0, 0, 0.25, 2, 1e6)
const s = fc.option(fc.constantFrom('', 'a', 'ab', 'b', 'é', 'z\u0001', 'a\u0000', '\uffff', '😀'), { nil: null })
const b = fc.boolean()
const row: fc.Arbitrary<Row> = fc.record({ id, g, n, f, s, b })

const cond = fc.oneof(
  fc.record({ g }),
  fc.record({ g: fc.record({ in: fc.array(g, { maxLength: 2 }) }) }),
  fc.record({ n }),
  fc.record({ n: fc.record({ ne: n }) }),
  fc.record({ n: fc.record({ in: fc.array(n, { maxLength: 3 }) }) }),
  fc.record({ n: fc.record({ gt: fc.integer({ min: -3, max: 3 }) }) }),
  fc.record({ n: fc.record({ gte: fc.integer({ min: -3, max: 3 }), lt: fc.integer({ min: -3, max: 3 }) }) }),
  fc.record({ s }),
  fc.record({ s: fc.record({ ne: s }) }),
  fc.record({ s: fc.record({ lte: fc.constantFrom('a', 'ab', 'b', '') }) }),
  fc.record({ f: fc.record({ gt: f }) }),
  fc.record({ b }),
  fc.record({ g, n: fc.record({ lte: fc.integer({ min: -3, max: 3 }) }) }),
  fc.record({ id }),
  fc.record({ id: fc.record({ in: fc.array(id, { maxLength: 3 }) }) }),
)
const where = fc.array(cond, { maxLength: 2 }).map((cs) => Object.assign({}, ...cs) as Record<string, unknown>)
const col = fc.constantFrom('g', 'n', 'f', 's', 'b', 'id')
const orderBy = fc.array(fc.tuple(col, fc.constantFrom('asc' as const, 'desc' as const)), { maxLength: 3 })
const setArb = fc.record({ g, n, f, s, b }, { requiredKeys: [] }).filter((x) => Object.keys(x).length > 0)

type Op =
  | { op: 'insert'; rows: Row[] }
  | { op: 'update'; where: Record<string, unknown>; set: Partial<Row> }
  | { op: 'cas'; id: string; expect: Record<string, unknown>; set: Partial<Row> }
  | { op: 'softDelete'; where: Record<string, unknown> }
  | { op: 'delete'; where: Record<string, unknown>; withDeleted: boolean }
  | { op: 'find'; where: Record<string, unknown>; orderBy: Array<[string, 'asc' | 'desc']>; limit?: number; offset?: number; withDeleted: boolean }
  | { op: 'page'; where: Record<string, unknown>; orderBy: Array<[string, 'asc' | 'desc']>; size: number }
  | { op: 'count'; where: Record<string, unknown>; withDeleted: boolean }
  | { op: 'tx'; rows: Row[]; fail: boolean }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('insert' as const), rows: fc.array(row, { minLength: 1, maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('update' as const), where, set: setArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cas' as const), id, expect: cond, set: setArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('softDelete' as const), where }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), where, withDeleted: fc.boolean() }) },
  {
    weight: 4,
    arbitrary: fc.record(
      {
        op: fc.constant('find' as const),
        where,
        orderBy,
        limit: fc.integer({ min: 0, max: 5 }),
        offset: fc.integer({ min: 0, max: 3 }),
        withDeleted: fc.boolean(),
      },
      { requiredKeys: ['op', 'where', 'orderBy', 'withDeleted'] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('page' as const), where, orderBy, size: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('count' as const), where, withDeleted: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tx' as const), rows: fc.array(row, { minLength: 1, maxLength: 2 }), fail: fc.boolean() }) },
)

/** Run one op; the outcome is a plain value (result or error code) comparable across backends. */
async function apply(db: Database, op: Op): Promise<unknown> {
  const repo = db.repository(P)
  try {
    switch (op.op) {
      case 'insert':
        return (await repo.insertMany(op.rows)).map((r) => r.id)
      case 'update':
        return await repo.update(op.where as never, op.set)
      case 'cas':
        return await repo.update({ id: op.id }, op.set, { expect: op.expect as never })
      case 'softDelete':
        return await repo.softDelete(op.where as never)
      case 'delete':
        return await repo.delete(op.where as never, { withDeleted: op.withDeleted })
      case 'find':
        return await repo.find({ where: op.where as never, orderBy: op.orderBy as never, limit: op.limit, offset: op.offset, withDeleted: op.withDeleted })
      case 'count':
        return await repo.count(op.where as never, { withDeleted: op.withDeleted })
      case 'page': {
        const out: unknown[] = []
        let after: Record<string, unknown> | undefined
        for (let i = 0; i < 20; i++) {
          const page = await repo.find({ where: op.where as never, orderBy: op.orderBy as never, limit: op.size, after: after as never })
          if (!page.length) break
          out.push(...page)
          after = page[page.length - 1]
        }
        return out
      }
      case 'tx':
        return await db.transaction(async (tx) => {
          const r = await tx.repository(P).insertMany(op.rows)
          if (op.fail) throw new CausewayError('CONFLICT', 'abort')
          return r.length
        })
    }
  } catch (e) {
    if (e instanceof CausewayError) return { error: e.code }
    throw e
  }
}

describe('properties', () => {
  it('rowMerge is commutative, associative and idempotent', () => {
    const stamp = fc.tuple(fc.integer({ min: 1, max: 5 }), fc.constantFrom('a', 'b', 'c'))
    const cell = fc.tuple(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(null), fc.constantFrom('u', 'v')), stamp).map(([v, [t, s]]) => [v, t, s])
    const rv = fc
      .record({
        i: fc.tuple(stamp, fc.constantFrom('a', 'b')).map(([[t, s], h]) => [t, s, h]),
        d: fc.option(stamp, { nil: undefined }),
        c: fc.dictionary(fc.constantFrom('x', 'y', 'z'), cell),
      })
      .map((r) => {
        const v: Record<string, unknown> = { orm: 1, i: r.i, c: r.c }
        if (r.d) v.d = r.d
        return v as unknown as Value
      })
    const norm = (v: Value) => JSON.stringify(v, Object.keys(v as object).sort()) + JSON.stringify((v as { c: object }).c, ['x', 'y', 'z'].sort())
    fc.assert(
      fc.property(rv, rv, rv, (x, y, z) => {
        expect(norm(rowMerge(x, y))).toBe(norm(rowMerge(y, x)))
        expect(norm(rowMerge(rowMerge(x, y), z))).toBe(norm(rowMerge(x, rowMerge(y, z))))
        expect(norm(rowMerge(x, x))).toBe(norm(x))
      }),
      { numRuns: 300 },
    )
  })

  it('random operation sequences give the same results on SQLite and on one Causeway site', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const sql = await openDatabase({ backend: 'sqlite', models, siteId: 'a' })
        const site = await openSite({ id: 'a', storage: 'memory', shards: 3, conflicts: ormConflicts(models) })
        const cw = await openDatabase({ backend: 'causeway', site, models })
        try {
          for (const op of ops) {
            const x = await apply(sql, op)
            const y = await apply(cw, op)
            expect(y, JSON.stringify(op)).toEqual(x)
          }
          expect(await apply(cw, { op: 'find', where: {}, orderBy: [], withDeleted: true })).toEqual(await apply(sql, { op: 'find', where: {}, orderBy: [], withDeleted: true }))
          await checkIndexes(site)
        } finally {
          await sql.close()
          await site.close()
        }
      }),
      { numRuns: 60 },
    )
  })

  // legacy: sites opened with ormConflicts (rows at p/..., merged by the site); otherwise opened
  // without configuration (rows under ~siblings/orm/p/..., siblings merged by the ORM; issue #8 item 6).
  it.each([
    ['opened with ormConflicts', true],
    ['opened without conflict configuration', false],
  ] as const)('on several sites %s, after settle every site returns the same rows and the indexes agree with the rows', async (_name, legacy) => {
    const siteOp = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.integer({ min: 0, max: 2 }), opArb) },
      { weight: 1, arbitrary: fc.tuple(fc.constant(-1), fc.constant({ op: 'partition' })) },
      { weight: 1, arbitrary: fc.tuple(fc.constant(-2), fc.constant({ op: 'heal' })) },
    )
    await fc.assert(
      fc.asyncProperty(fc.array(siteOp, { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 2 }), async (ops, cut) => {
        const net = createSimNetwork({ latencyMs: 5, jitterMs: 3, seed: 11 })
        const ids = ['a', 'b', 'c']
        const sites = await Promise.all(
          ids.map((i) => openSite({ id: i, storage: 'memory', shards: 2, ...(legacy ? { conflicts: ormConflicts(models) } : {}), network: net.adapter(i), heartbeatMs: 20 })),
        )
        const dbs = await Promise.all(sites.map((site) => openDatabase({ backend: 'causeway', site, models })))
        try {
          for (const [i, op] of ops) {
            if (i === -1) net.partition([ids[cut]!], ids.filter((x) => x !== ids[cut]))
            else if (i === -2) net.heal()
            else await apply(dbs[i]!, op as Op)
          }
          net.heal()
          await net.settle()
          const all = await Promise.all(dbs.map((db) => db.repository(P).find({ withDeleted: true })))
          expect(all[1]).toEqual(all[0])
          expect(all[2]).toEqual(all[0])
          for (const site of sites) await checkIndexes(site, legacy ? 'p' : '~siblings/orm/p')
          // Indexed queries agree with filtering the full table.
          for (const db of dbs) {
            const rows = all[0]!.filter((r) => r.deleted === 0)
            expect(await db.repository(P).find({ where: { g: 'x' }, orderBy: [['n', 'desc']] })).toEqual(
              rows.filter((r) => r.g === 'x').sort((p, q) => cmpNullsLastDesc(p.n, q.n) || (p.id < q.id ? 1 : -1)),
            )
          }
        } finally {
          for (const site of sites) await site.close()
          await net.close()
        }
      }),
      { numRuns: 12 },
    )
  })
})

function cmpNullsLastDesc(a: number | null, b: number | null): number {
  if (a === b) return 0
  if (a === null) return 1
  if (b === null) return -1
  return b - a
}

/** Every index holds exactly the terms of the live rows the site holds. */
async function checkIndexes(site: Site, base = 'p'): Promise<void> {
  const session = site.session()
  const keys: string[] = []
  for await (const k of site.scanKeys(`${base}/`)) keys.push(k)
  const got = await session.getMany(keys)
  const live = [...got.values()].map((e) => ({ value: rowValueOf(e)! })).filter((e) => {
    const v = e.value as { i: [number, string]; d?: [number, string] }
    return !v.d || v.i[0] > v.d[0] || (v.i[0] === v.d[0] && v.i[1] > v.d[1])
  })
  const defs: Array<[string, string[]]> = [['p--pk', ['id']], ...P.info.indexes.map((ix, i) => [`p--${i}`, [...ix.columns]] as [string, string[]])]
  for (const [name, cols] of defs) {
    const entries: string[] = []
    for await (const { term, key } of site.scanIndex(name)) entries.push(`${term}|${key}`)
    const expected = live.map((e) => {
      const c = (e.value as { c: Record<string, [unknown]> }).c
      return `${encodeTerm(cols.map((x) => (c[x]?.[0] ?? null) as never))}|${rowKey(base, c['id']![0] as string)}`
    })
    expect(entries.sort()).toEqual(expected.sort())
  }
}
