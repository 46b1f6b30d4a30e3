/**
 * Validation and compilation of repository arguments into operation nodes. Everything a caller can
 * get wrong is rejected here (INVALID_QUERY / INVALID_ROW) before any backend sees it, so a bad
 * call writes nothing.
 */
import { CausewayError } from '@causeway/core'
import type { ColumnInfo, JsonValue, ModelInfo } from './model.js'
import {
  and,
  deepFreeze,
  TRUE,
  type CanonRow,
  type CanonValue,
  type CmpNode,
  type CmpOp,
  type CountNode,
  type DeleteNode,
  type Direction,
  type InsertNode,
  type OrderItem,
  type Scalar,
  type SelectNode,
  type UpdateNode,
  type WhereNode,
} from './nodes.js'

export type Clock = { nowMs(): number }

/** User-facing where: literal = equality (null matches NULL), or an operator object. */
export type WhereInput = Record<string, unknown>
export type OrderByInput = ReadonlyArray<readonly [string, Direction?] | string>

export interface FindInput {
  where?: WhereInput
  orderBy?: OrderByInput
  limit?: number
  offset?: number
  after?: Record<string, unknown>
  withDeleted?: boolean
}

const OPS: ReadonlySet<string> = new Set(['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte'])

function query(message: string, details: Record<string, unknown> = {}): CausewayError {
  return new CausewayError('INVALID_QUERY', message, { details })
}
function rowErr(message: string, details: Record<string, unknown> = {}): CausewayError {
  return new CausewayError('INVALID_ROW', message, { details })
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false
  const p = Object.getPrototypeOf(x)
  return p === Object.prototype || p === null
}

/** JS value -> canonical value for a column, or undefined when the type is wrong. */
export function toCanon(col: ColumnInfo, v: unknown): CanonValue | undefined {
  if (v === null) return col.nullable ? null : undefined
  switch (col.type) {
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v) ? (Object.is(v, -0) ? 0 : v) : undefined
    case 'float':
      return typeof v === 'number' && Number.isFinite(v) ? (Object.is(v, -0) ? 0 : v) : undefined
    case 'string':
    case 'text':
      return typeof v === 'string' ? v : undefined
    case 'bool':
      return typeof v === 'boolean' ? v : undefined
    case 'datetime':
      return v instanceof Date && Number.isFinite(v.getTime()) ? v.getTime() : undefined
    case 'json':
      return isJson(v, 0) ? (structuredClone(v) as JsonValue) : undefined
    default:
      return col.type satisfies never
  }
}

function isJson(v: unknown, depth: number): boolean {
  if (depth > 64) return false
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true
  if (typeof v === 'number') return Number.isFinite(v)
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1))
  if (isPlainObject(v)) return Object.values(v).every((x) => isJson(x, depth + 1))
  return false
}

/** Canonical -> JS (datetime back to Date, json cloned so callers cannot mutate shared state). */
export function fromCanon(col: ColumnInfo, v: CanonValue): unknown {
  if (v === null || v === undefined) return null
  if (col.type === 'datetime') return new Date(v as number)
  if (col.type === 'json') return structuredClone(v)
  return v
}

export function rowFromCanon(model: ModelInfo, row: CanonRow): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, col] of model.columns) out[name] = fromCanon(col, row[name] ?? null)
  return out
}

function column(model: ModelInfo, name: string, code: 'INVALID_QUERY' | 'INVALID_ROW'): ColumnInfo {
  const col = model.columns.get(name)
  if (!col) throw new CausewayError(code, `${model.table}: unknown column ${name}`, { details: { table: model.table, column: name } })
  return col
}

function scalarFor(model: ModelInfo, col: ColumnInfo, v: unknown, op: string): Scalar {
  // Comparisons treat every column as nullable: `{ host: null }` on a non-null column matches nothing.
  const c = v === null ? null : toCanon({ ...col, nullable: true }, v)
  if (c === undefined || (c !== null && typeof c === 'object')) {
    throw query(`${model.table}.${col.name}: bad value for ${op} (${col.type})`, { table: model.table, column: col.name })
  }
  return c as Scalar
}

export function buildWhere(model: ModelInfo, input: WhereInput | undefined): WhereNode {
  if (input === undefined) return TRUE
  if (!isPlainObject(input)) throw query(`${model.table}: where must be a plain object`)
  const items: CmpNode[] = []
  for (const [name, raw] of Object.entries(input)) {
    if (raw === undefined) continue
    const col = column(model, name, 'INVALID_QUERY')
    if (col.type === 'json') throw query(`${model.table}.${name}: json columns cannot be compared`, { table: model.table, column: name })
    if (isPlainObject(raw)) {
      const keys = Object.keys(raw)
      if (keys.length === 0) throw query(`${model.table}.${name}: empty operator object`)
      for (const op of keys) {
        if (!OPS.has(op)) throw query(`${model.table}.${name}: unknown operator ${op}`, { table: model.table, column: name, op })
        const v = raw[op]
        if (op === 'in') {
          if (!Array.isArray(v)) throw query(`${model.table}.${name}: in needs an array`)
          items.push({ kind: 'cmp', column: name, op: 'in', value: v.map((x) => scalarFor(model, col, x, 'in')) })
        } else {
          const s = scalarFor(model, col, v, op)
          if (s === null && op !== 'eq' && op !== 'ne') throw query(`${model.table}.${name}: ${op} null never matches; use eq/ne`)
          items.push({ kind: 'cmp', column: name, op: op as Exclude<CmpOp, 'in'>, value: s })
        }
      }
    } else {
      items.push({ kind: 'cmp', column: name, op: 'eq', value: scalarFor(model, col, raw, 'eq') })
    }
  }
  return items.length === 0 ? TRUE : and(...items)
}

/** The implicit `deleted = live` filter of soft-delete models (part of the tree, so indexes can serve it). */
export function liveFilter(model: ModelInfo, withDeleted: boolean | undefined): WhereNode {
  const sd = model.softDelete
  if (!sd || withDeleted === true) return TRUE
  const live: Scalar = sd.type === 'int' ? 0 : sd.type === 'bool' ? false : null
  return { kind: 'cmp', column: sd.column, op: 'eq', value: live }
}

function nonNegInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw query(`${what} must be a non-negative integer`)
  return v
}

export function buildOrderBy(model: ModelInfo, input: OrderByInput | undefined): OrderItem[] {
  if (input !== undefined && !Array.isArray(input)) throw query(`${model.table}: orderBy must be an array`)
  const out: OrderItem[] = []
  const seen = new Set<string>()
  for (const item of input ?? []) {
    const [name, dir = 'asc'] = typeof item === 'string' ? [item, 'asc'] : Array.isArray(item) ? item : [undefined, undefined]
    if (typeof name !== 'string') throw query(`${model.table}: bad orderBy item`)
    const col = column(model, name, 'INVALID_QUERY')
    if (col.type === 'json') throw query(`${model.table}.${name}: json columns cannot be ordered`)
    if (dir !== 'asc' && dir !== 'desc') throw query(`${model.table}.${name}: direction must be 'asc' or 'desc'`)
    if (seen.has(name)) continue
    seen.add(name)
    out.push({ column: name, direction: dir })
  }
  // A total order makes pagination exact: ties are broken by the primary key, in the direction of
  // the last orderBy item (so an index can serve the whole order with one scan direction).
  if (!seen.has(model.primaryKey)) {
    out.push({ column: model.primaryKey, direction: out.length ? out[out.length - 1]!.direction : 'asc' })
  }
  return out
}

export function buildSelect(model: ModelInfo, input: FindInput = {}): SelectNode {
  if (!isPlainObject(input as unknown)) throw query(`${model.table}: find options must be a plain object`)
  const where = and(buildWhere(model, input.where), liveFilter(model, input.withDeleted))
  const orderBy = buildOrderBy(model, input.orderBy)
  const limit = input.limit === undefined ? null : nonNegInt(input.limit, 'limit')
  const offset = input.offset === undefined ? 0 : nonNegInt(input.offset, 'offset')
  let after: Scalar[] | null = null
  const a = input.after as Record<string, unknown> | null | undefined
  if (a !== undefined && a !== null) {
    if (typeof a !== 'object') throw query(`${model.table}: after must be a row`)
    after = orderBy.map(({ column: name }) => {
      if (!(name in a)) throw query(`${model.table}: after lacks orderBy column ${name}`)
      return scalarFor(model, column(model, name, 'INVALID_QUERY'), a[name], 'after')
    })
  }
  return deepFreeze({ kind: 'select', table: model.table, where, orderBy, limit, offset, after })
}

export function buildCount(model: ModelInfo, where: WhereInput | undefined, withDeleted?: boolean): CountNode {
  return deepFreeze({ kind: 'count', table: model.table, where: and(buildWhere(model, where), liveFilter(model, withDeleted)) })
}

export function canonInsertRow(model: ModelInfo, input: unknown): CanonRow {
  if (!isPlainObject(input)) throw rowErr(`${model.table}: a row must be a plain object`)
  for (const k of Object.keys(input)) {
    if (!model.columns.has(k)) throw rowErr(`${model.table}: unknown column ${k}`, { table: model.table, column: k })
  }
  const out: Record<string, CanonValue> = {}
  const sd = model.softDelete
  for (const [name, col] of model.columns) {
    let v = input[name]
    if (v === undefined) {
      if (name === model.primaryKey && model.generate === 'sequence') {
        out[name] = null
        continue
      }
      if (sd && name === sd.column) v = sd.type === 'int' ? 0 : sd.type === 'bool' ? false : null
      else if (col.nullable) v = null
      else throw rowErr(`${model.table}: missing column ${name}`, { table: model.table, column: name })
    }
    const c = toCanon(col, v)
    if (c === undefined) throw rowErr(`${model.table}.${name}: expected ${col.type}${col.nullable ? '?' : ''}`, { table: model.table, column: name })
    out[name] = c
  }
  const pk = out[model.primaryKey]
  if (pk === '') throw rowErr(`${model.table}: empty primary key`)
  return out
}

export function buildInsert(model: ModelInfo, rows: unknown[], home: string | null): InsertNode {
  if (!Array.isArray(rows)) throw rowErr(`${model.table}: insertMany needs an array`)
  const canon = rows.map((r) => canonInsertRow(model, r))
  const pks = new Set<CanonValue>()
  for (const r of canon) {
    const pk = r[model.primaryKey] ?? null
    if (pk === null) continue
    if (pks.has(pk)) throw new CausewayError('CONFLICT', `${model.table}: duplicate primary key ${String(pk)} in one insert`)
    pks.add(pk)
  }
  return deepFreeze({ kind: 'insert', table: model.table, rows: canon, home })
}

export function canonSet(model: ModelInfo, set: unknown): CanonRow {
  if (!isPlainObject(set)) throw rowErr(`${model.table}: update values must be a plain object`)
  const out: Record<string, CanonValue> = {}
  for (const [name, v] of Object.entries(set)) {
    if (v === undefined) continue
    const col = column(model, name, 'INVALID_ROW')
    if (name === model.primaryKey) throw rowErr(`${model.table}: the primary key cannot be updated`)
    const c = toCanon(col, v)
    if (c === undefined) throw rowErr(`${model.table}.${name}: expected ${col.type}${col.nullable ? '?' : ''}`, { table: model.table, column: name })
    out[name] = c
  }
  return out
}

export function buildUpdate(
  model: ModelInfo,
  where: WhereInput,
  set: unknown,
  opts: { expect?: WhereInput; withDeleted?: boolean } = {},
): UpdateNode {
  if (!isPlainObject(opts)) throw query(`${model.table}: update options must be a plain object`)
  const w = and(buildWhere(model, requireWhere(model, where)), liveFilter(model, opts.withDeleted))
  const expect = opts.expect === undefined ? null : buildWhere(model, opts.expect)
  return deepFreeze({ kind: 'update', table: model.table, where: w, set: canonSet(model, set), expect })
}

export function buildSoftDelete(model: ModelInfo, where: WhereInput, clock: Clock): UpdateNode {
  const sd = model.softDelete
  if (!sd) throw new CausewayError('INVALID_QUERY', `${model.table}: model has no softDelete column`)
  const now = clock.nowMs()
  const set: Record<string, CanonValue> = { [sd.column]: sd.type === 'int' ? 1 : sd.type === 'bool' ? true : now }
  if (sd.deletedAt) set[sd.deletedAt] = now
  const w = and(buildWhere(model, requireWhere(model, where)), liveFilter(model, false))
  return deepFreeze({ kind: 'update', table: model.table, where: w, set, expect: null })
}

export function buildDelete(model: ModelInfo, where: WhereInput, withDeleted?: boolean): DeleteNode {
  const w = and(buildWhere(model, requireWhere(model, where)), liveFilter(model, withDeleted))
  return deepFreeze({ kind: 'delete', table: model.table, where: w })
}

/** update/delete need an explicit where (use `{}` to mean every row) — a missing one is a bug. */
function requireWhere(model: ModelInfo, where: WhereInput): WhereInput {
  if (where === undefined || where === null) throw query(`${model.table}: where is required (use {} for all rows)`)
  return where
}
