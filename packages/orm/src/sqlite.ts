/**
 * SQLite backend (better-sqlite3): real tables, real (unique) indexes, real transactions — the
 * baseline a service would otherwise use. datetime = INTEGER epoch ms, bool = 0/1, json = TEXT.
 */
import Database from 'better-sqlite3'
import { CausewayError } from '@causeway/core'
import type { Backend, Executor } from './backend.js'
import type { ColumnInfo, ModelInfo } from './model.js'
import { KeyedMutex } from './mutex.js'
import {
  assertNever,
  type CanonRow,
  type CanonValue,
  type CountNode,
  type DeleteNode,
  type InsertNode,
  type OrderItem,
  type Scalar,
  type SelectNode,
  type StatementNode,
  type UpdateNode,
  type WhereNode,
} from './nodes.js'

export interface SqliteOptions {
  /** Database file; ':memory:' (default) for a private in-memory database. */
  file?: string
  /** Prefix of generated sequence ids (default 'local'). */
  siteId?: string
}

type Sql = { text: string; params: unknown[] }

const q = (name: string): string => `"${name.replace(/"/g, '""')}"`

function sqlType(c: ColumnInfo): string {
  switch (c.type) {
    case 'int':
    case 'bool':
    case 'datetime':
      return 'INTEGER'
    case 'float':
      return 'REAL'
    case 'string':
    case 'text':
    case 'json':
      return 'TEXT'
    default:
      return assertNever(c.type, 'column type')
  }
}

function param(v: CanonValue): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0
  return v
}

/** Compile a where node to SQL with the null semantics of eval.ts. */
export function compileWhere(w: WhereNode, out: unknown[]): string {
  switch (w.kind) {
    case 'and':
      return w.items.length === 0 ? '1' : w.items.map((i) => `(${compileWhere(i, out)})`).join(' AND ')
    case 'cmp': {
      const c = q(w.column)
      switch (w.op) {
        case 'eq':
          if (w.value === null) return `${c} IS NULL`
          out.push(param(w.value))
          return `${c} = ?`
        case 'ne':
          if (w.value === null) return `${c} IS NOT NULL`
          out.push(param(w.value))
          return `${c} IS NOT ?` // null-safe: a NULL host is "not h1"
        case 'in': {
          const vals = w.value.filter((v) => v !== null)
          const parts: string[] = []
          if (vals.length) {
            out.push(...vals.map(param))
            parts.push(`${c} IN (${vals.map(() => '?').join(',')})`)
          }
          if (vals.length !== w.value.length) parts.push(`${c} IS NULL`)
          return parts.length ? parts.join(' OR ') : '0'
        }
        case 'gt':
        case 'gte':
        case 'lt':
        case 'lte': {
          out.push(param(w.value))
          const op = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[w.op]
          return `${c} ${op} ?`
        }
        default:
          return assertNever(w, 'operator')
      }
    }
    default:
      return assertNever(w)
  }
}

/** Keyset predicate "row comes after `after`" for ASC NULLS FIRST / DESC NULLS LAST. */
function compileAfter(orderBy: readonly OrderItem[], after: readonly Scalar[], out: unknown[]): string {
  const ors: string[] = []
  for (let i = 0; i < orderBy.length; i++) {
    const ands: string[] = []
    for (let j = 0; j < i; j++) {
      const v = after[j] ?? null
      if (v === null) ands.push(`${q(orderBy[j]!.column)} IS NULL`)
      else {
        out.push(param(v))
        ands.push(`${q(orderBy[j]!.column)} = ?`)
      }
    }
    const { column, direction } = orderBy[i]!
    const v = after[i] ?? null
    const c = q(column)
    let cond: string
    if (direction === 'asc') {
      if (v === null) cond = `${c} IS NOT NULL`
      else {
        out.push(param(v))
        cond = `${c} > ?`
      }
    } else if (v === null) {
      cond = '0' // nothing sorts after NULL in DESC
    } else {
      out.push(param(v))
      cond = `(${c} < ? OR ${c} IS NULL)`
    }
    ands.push(cond)
    ors.push(`(${ands.join(' AND ')})`)
  }
  return ors.join(' OR ')
}

export function compile(node: StatementNode, model: ModelInfo): Sql {
  const params: unknown[] = []
  const t = q(node.table)
  switch (node.kind) {
    case 'select': {
      let where = compileWhere(node.where, params)
      if (node.after) where = `(${where}) AND (${compileAfter(node.orderBy, node.after, params)})`
      const order = node.orderBy.map((o) => `${q(o.column)} ${o.direction.toUpperCase()}`).join(', ')
      let text = `SELECT ${[...model.columns.keys()].map(q).join(', ')} FROM ${t} WHERE ${where} ORDER BY ${order}`
      if (node.limit !== null || node.offset > 0) {
        text += ' LIMIT ? OFFSET ?'
        params.push(node.limit ?? -1, node.offset)
      }
      return { text, params }
    }
    case 'count':
      return { text: `SELECT COUNT(*) AS n FROM ${t} WHERE ${compileWhere(node.where, params)}`, params }
    case 'insert': {
      const cols = [...model.columns.keys()]
      return { text: `INSERT INTO ${t} (${cols.map(q).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, params }
    }
    case 'update': {
      const sets = Object.entries(node.set).map(([k, v]) => {
        params.push(sqlValue(model.columns.get(k)!, v))
        return `${q(k)} = ?`
      })
      let where = compileWhere(node.where, params)
      if (node.expect) where = `(${where}) AND (${compileWhere(node.expect, params)})`
      // An empty SET still counts matched rows, as the Causeway backend does.
      const setSql = sets.length ? sets.join(', ') : `${q(model.primaryKey)} = ${q(model.primaryKey)}`
      return { text: `UPDATE ${t} SET ${setSql} WHERE ${where}`, params }
    }
    case 'delete':
      return { text: `DELETE FROM ${t} WHERE ${compileWhere(node.where, params)}`, params }
    default:
      return assertNever(node)
  }
}

function sqlValue(col: ColumnInfo, v: CanonValue): unknown {
  if (v === null) return null
  if (col.type === 'json') return JSON.stringify(v)
  return param(v)
}

function fromSql(col: ColumnInfo, v: unknown): CanonValue {
  if (v === null || v === undefined) return null
  switch (col.type) {
    case 'bool':
      return v === 1 || v === 1n
    case 'json':
      return JSON.parse(v as string) as CanonValue
    case 'int':
    case 'float':
    case 'datetime':
      return Number(v)
    case 'string':
    case 'text':
      return v as string
    default:
      return assertNever(col.type, 'column type')
  }
}

export async function openSqliteBackend(models: readonly ModelInfo[], opts: SqliteOptions = {}): Promise<Backend> {
  const siteId = opts.siteId ?? 'local'
  const db = new Database(opts.file ?? ':memory:')
  db.pragma('journal_mode = WAL')
  db.pragma('foreign_keys = OFF')
  const byTable = new Map(models.map((m) => [m.table, m]))
  db.exec(`CREATE TABLE IF NOT EXISTS "__orm_seq" ("name" TEXT PRIMARY KEY, "value" INTEGER NOT NULL)`)
  for (const m of models) {
    const cols = [...m.columns.values()].map((c) => `${q(c.name)} ${sqlType(c)}${c.nullable ? '' : ' NOT NULL'}`)
    db.exec(`CREATE TABLE IF NOT EXISTS ${q(m.table)} (${cols.join(', ')}, PRIMARY KEY (${q(m.primaryKey)}))`)
    for (const ix of m.indexes) {
      const name = `${m.table}__${ix.columns.join('__')}`
      db.exec(`CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${q(name)} ON ${q(m.table)} (${ix.columns.map(q).join(', ')})`)
    }
  }
  const stmtCache = new Map<string, Database.Statement>()
  const prepare = (text: string): Database.Statement => {
    let s = stmtCache.get(text)
    if (!s) {
      s = db.prepare(text)
      stmtCache.set(text, s)
    }
    return s
  }
  const nextSeq = (table: string): string => {
    const row = prepare(`INSERT INTO "__orm_seq" ("name", "value") VALUES (?, 1) ON CONFLICT("name") DO UPDATE SET "value" = "value" + 1 RETURNING "value"`).get(table) as { value: number }
    return `${siteId}-${String(row.value).padStart(12, '0')}`
  }

  const run = (node: StatementNode): CanonRow[] | number => {
    const model = byTable.get(node.table)
    if (!model) throw new CausewayError('INVALID_MODEL', `unknown table ${node.table}`)
    try {
      return runNode(node, model)
    } catch (e) {
      if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('SQLITE_CONSTRAINT')) {
        throw new CausewayError('CONFLICT', `${node.table}: ${e.message}`, { cause: e })
      }
      throw e
    }
  }

  const runNode = (node: StatementNode, model: ModelInfo): CanonRow[] | number => {
    switch (node.kind) {
      case 'select':
        return selectRows(node, model)
      case 'count':
        return countRows(node, model)
      case 'insert':
        return insertRows(node, model)
      case 'update':
        return changeRows(node, model)
      case 'delete':
        return changeRows(node, model)
      default:
        return assertNever(node)
    }
  }
  const selectRows = (node: SelectNode, model: ModelInfo): CanonRow[] => {
    const { text, params } = compile(node, model)
    const rows = prepare(text).all(...params) as Record<string, unknown>[]
    return rows.map((r) => {
      const out: Record<string, CanonValue> = {}
      for (const [name, col] of model.columns) out[name] = fromSql(col, r[name])
      return out
    })
  }
  const countRows = (node: CountNode, model: ModelInfo): number => {
    const { text, params } = compile(node, model)
    return Number((prepare(text).get(...params) as { n: number }).n)
  }
  const insertRows = (node: InsertNode, model: ModelInfo): CanonRow[] => {
    const { text } = compile(node, model)
    const stmt = prepare(text)
    const out: CanonRow[] = []
    // insertMany is all-or-nothing, like one INSERT statement.
    const tx = db.transaction(() => {
      for (const r of node.rows) {
        const row = { ...r }
        if (row[model.primaryKey] === null && model.generate === 'sequence') row[model.primaryKey] = nextSeq(model.table)
        stmt.run(...[...model.columns.values()].map((c) => sqlValue(c, row[c.name] ?? null)))
        out.push(row)
      }
    })
    tx()
    return out
  }
  const changeRows = (node: UpdateNode | DeleteNode, model: ModelInfo): number => {
    const { text, params } = compile(node, model)
    return prepare(text).run(...params).changes
  }
  const homeSite = async (table: string, pk: string | number): Promise<string | undefined> => {
    const model = byTable.get(table)
    if (!model) throw new CausewayError('INVALID_MODEL', `unknown table ${table}`)
    const row = prepare(`SELECT 1 AS x FROM ${q(table)} WHERE ${q(model.primaryKey)} = ?`).get(pk)
    return row ? siteId : undefined
  }

  // One connection: while a transaction is open (it may await), other callers wait for it.
  const conn = new KeyedMutex()
  const LOCK = 'connection'
  let closed = false
  const check = (): void => {
    if (closed) throw new CausewayError('CLOSED', 'database is closed')
  }
  return {
    kind: 'sqlite',
    siteId,
    async execute(node) {
      check()
      const release = await conn.acquire(LOCK)
      try {
        check()
        return run(node)
      } finally {
        release()
      }
    },
    homeSite,
    async transaction(fn) {
      check()
      const release = await conn.acquire(LOCK)
      try {
        check()
        let done = false
        // Valid only while the transaction is open: afterwards it would bypass the connection lock.
        const txExecutor: Executor = {
          execute: async (node) => {
            if (done) throw new CausewayError('INVALID_ARGUMENT', 'the transaction has ended; use the database or a new transaction')
            return run(node)
          },
          homeSite,
        }
        db.exec('BEGIN IMMEDIATE')
        try {
          const result = await fn(txExecutor)
          db.exec('COMMIT')
          return result
        } catch (e) {
          if (db.inTransaction) db.exec('ROLLBACK')
          throw e
        } finally {
          done = true
        }
      } finally {
        release()
      }
    },
    async close() {
      if (closed) return
      const release = await conn.acquire(LOCK)
      closed = true
      db.close()
      release()
    },
  }
}
