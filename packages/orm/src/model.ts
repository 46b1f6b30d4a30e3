import { CausewayError } from '@causeway/core'

/** Column base types. `?` suffix = nullable. */
export type BaseType = 'int' | 'float' | 'string' | 'text' | 'bool' | 'datetime' | 'json'
export type ColumnSpec = BaseType | `${BaseType}?`

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue }

type JsOf<B> = B extends 'int' | 'float'
  ? number
  : B extends 'string' | 'text'
    ? string
    : B extends 'bool'
      ? boolean
      : B extends 'datetime'
        ? Date
        : B extends 'json'
          ? JsonValue
          : never

export type ColumnsSpec = Record<string, ColumnSpec>

/** The JS row type of a column map: nullable columns are `T | null`. */
export type RowOf<C> = { -readonly [K in keyof C]: C[K] extends `${infer B}?` ? JsOf<B> | null : JsOf<C[K]> }

export interface RelationDef {
  /** Thunk, so models may reference models defined later. */
  model: () => AnyModel
  /** Column of this model. */
  localKey: string
  /** Column of the related model; must be its primary key or the first column of one of its indexes. */
  foreignKey: string
  /** 'many': an array (ordered by the related primary key); 'one': the row or null. */
  kind: 'many' | 'one'
}

export type IndexSpec = readonly string[] | { readonly columns: readonly string[]; readonly unique?: boolean }

export interface ModelDef {
  table: string
  primaryKey: string
  columns: ColumnsSpec
  indexes?: readonly IndexSpec[]
  relations?: Record<string, RelationDef>
  /**
   * true: the `deleted` column marks soft-deleted rows; a string names another column.
   * int column: 0 live / 1 deleted; bool: false / true; nullable datetime: null / deletion time.
   */
  softDelete?: boolean | string
  /** 'sequence': an omitted primary key is generated per site as `<siteId>-<000000000042>` (string pk). */
  generate?: 'sequence'
}

export interface ColumnInfo {
  readonly name: string
  readonly type: BaseType
  readonly nullable: boolean
}

export interface IndexInfo {
  readonly columns: readonly string[]
  readonly unique: boolean
}

export interface SoftDeleteInfo {
  readonly column: string
  readonly type: 'int' | 'bool' | 'datetime'
  /** A nullable datetime column stamped on soft delete, when the model has one named `deleted_at`. */
  readonly deletedAt: string | null
}

/** Normalized, frozen model metadata shared by the backends. */
export interface ModelInfo {
  readonly table: string
  readonly primaryKey: string
  readonly columns: ReadonlyMap<string, ColumnInfo>
  readonly indexes: readonly IndexInfo[]
  readonly relations: Readonly<Record<string, RelationDef>>
  readonly softDelete: SoftDeleteInfo | null
  readonly generate: 'sequence' | null
}

type Str<T> = T extends string ? T : never
type ColsOf<D> = D extends { columns: infer C } ? C : never
type NullableKeys<C> = { [K in keyof C]: C[K] extends `${string}?` ? K : never }[keyof C]
type SoftDeleteColumn<D> = D extends { softDelete: true } ? 'deleted' : D extends { softDelete: infer S extends string } ? S : never
type PkOf<D> = D extends { primaryKey: infer P extends string } ? P : never
type GeneratedPk<D> = D extends { generate: 'sequence' } ? PkOf<D> : never
type OptionalOnInsert<D> = NullableKeys<ColsOf<D>> | SoftDeleteColumn<D> | GeneratedPk<D>

export type ModelRow<D> = RowOf<ColsOf<D>>
export type ModelInsert<D> = Omit<ModelRow<D>, OptionalOnInsert<D>> &
  Partial<Pick<ModelRow<D>, Extract<OptionalOnInsert<D>, keyof ModelRow<D>>>>

/** A model: its definition (types) and normalized metadata. */
export interface Model<D extends ModelDef = ModelDef> {
  readonly def: D
  readonly info: ModelInfo
  readonly table: D['table']
  /** Phantom fields for type inference only. */
  readonly __row?: ModelRow<D>
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModel = Model<any>
export type RowOfModel<M> = M extends Model<infer D> ? ModelRow<D> : never
export type InsertOfModel<M> = M extends Model<infer D> ? ModelInsert<D> : never
export type RelationsOf<M> = M extends Model<infer D> ? (D extends { relations: infer R } ? R : {}) : {}
export type RelationName<M> = Str<keyof RelationsOf<M>>
type RelRow<R> = R extends { model: () => infer T; kind: infer K } ? (K extends 'one' ? RowOfModel<T> | null : RowOfModel<T>[]) : never
export type WithRelations<M, W extends string> = RowOfModel<M> & { [K in W]: K extends keyof RelationsOf<M> ? RelRow<RelationsOf<M>[K]> : never }

const TABLE_RE = /^[a-z][a-z0-9_]{0,62}$/
const COLUMN_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const BASE_TYPES: ReadonlySet<string> = new Set(['int', 'float', 'string', 'text', 'bool', 'datetime', 'json'])

function bad(message: string, details: Record<string, unknown> = {}): CausewayError {
  return new CausewayError('INVALID_MODEL', message, { details })
}

/**
 * Define a model. Validates eagerly (INVALID_MODEL) so a broken schema fails at import time, not on
 * the first query in production.
 */
export function defineModel<const D extends ModelDef>(def: D): Model<D> {
  if (def === null || typeof def !== 'object') throw bad('model definition must be an object')
  const { table, primaryKey } = def
  if (typeof table !== 'string' || !TABLE_RE.test(table)) {
    throw bad(`table name must match ${TABLE_RE}: ${String(table)}`, { table })
  }
  if (def.columns === null || typeof def.columns !== 'object') throw bad(`${table}: columns must be an object`)
  const columns = new Map<string, ColumnInfo>()
  for (const [name, spec] of Object.entries(def.columns)) {
    if (!COLUMN_RE.test(name)) throw bad(`${table}: bad column name ${name}`, { table, column: name })
    if (typeof spec !== 'string') throw bad(`${table}.${name}: column type must be a string`, { table, column: name })
    const nullable = spec.endsWith('?')
    const type = nullable ? spec.slice(0, -1) : spec
    if (!BASE_TYPES.has(type)) throw bad(`${table}.${name}: unknown column type ${spec}`, { table, column: name })
    columns.set(name, Object.freeze({ name, type: type as BaseType, nullable }))
  }
  if (columns.size === 0) throw bad(`${table}: no columns`)
  const pk = columns.get(primaryKey)
  if (!pk) throw bad(`${table}: primary key ${String(primaryKey)} is not a column`, { table })
  if (pk.nullable || (pk.type !== 'string' && pk.type !== 'int')) {
    throw bad(`${table}: primary key must be a non-null string or int column`, { table })
  }
  if (def.generate !== undefined && def.generate !== 'sequence') throw bad(`${table}: generate must be 'sequence'`)
  if (def.generate === 'sequence' && pk.type !== 'string') {
    throw bad(`${table}: generate: 'sequence' needs a string primary key (ids are '<site>-<counter>')`, { table })
  }

  const indexes: IndexInfo[] = []
  const seen = new Set<string>()
  for (const spec of def.indexes ?? []) {
    const cols = Array.isArray(spec) ? spec : (spec as { columns: readonly string[] }).columns
    const unique = !Array.isArray(spec) && (spec as { unique?: boolean }).unique === true
    if (!Array.isArray(cols) || cols.length === 0) throw bad(`${table}: an index needs at least one column`, { table })
    for (const c of cols) {
      const info = columns.get(c)
      if (!info) throw bad(`${table}: index column ${String(c)} is not a column`, { table, column: c })
      if (info.type === 'json') throw bad(`${table}: json column ${c} cannot be indexed`, { table, column: c })
    }
    if (new Set(cols).size !== cols.length) throw bad(`${table}: index repeats a column`, { table })
    const sig = cols.join(',')
    if (seen.has(sig)) throw bad(`${table}: duplicate index (${sig})`, { table })
    seen.add(sig)
    indexes.push(Object.freeze({ columns: Object.freeze([...cols]), unique }))
  }

  let softDelete: SoftDeleteInfo | null = null
  if (def.softDelete !== undefined && def.softDelete !== false) {
    const column = def.softDelete === true ? 'deleted' : def.softDelete
    const info = typeof column === 'string' ? columns.get(column) : undefined
    if (!info) throw bad(`${table}: softDelete column ${String(column)} is not a column`, { table })
    const ok = (info.type === 'int' && !info.nullable) || (info.type === 'bool' && !info.nullable) || (info.type === 'datetime' && info.nullable)
    if (!ok) throw bad(`${table}: softDelete column must be 'int', 'bool' or 'datetime?'`, { table, column })
    if (column === primaryKey) throw bad(`${table}: softDelete column cannot be the primary key`, { table })
    const da = columns.get('deleted_at')
    const deletedAt = column !== 'deleted_at' && da && da.type === 'datetime' && da.nullable ? 'deleted_at' : null
    softDelete = Object.freeze({ column, type: info.type as SoftDeleteInfo['type'], deletedAt })
  }

  const relations: Record<string, RelationDef> = {}
  for (const [name, rel] of Object.entries(def.relations ?? {})) {
    if (columns.has(name)) throw bad(`${table}: relation ${name} shadows a column`, { table, relation: name })
    if (!rel || typeof rel.model !== 'function') throw bad(`${table}: relation ${name} needs model: () => Model`, { table })
    if (!columns.has(rel.localKey)) throw bad(`${table}: relation ${name}: localKey ${rel.localKey} is not a column`, { table })
    if (rel.kind !== 'many' && rel.kind !== 'one') throw bad(`${table}: relation ${name}: kind must be 'many' or 'one'`, { table })
    // The foreign key is checked lazily (checkRelations) because the target may not exist yet.
    relations[name] = Object.freeze({ ...rel })
  }

  const info: ModelInfo = Object.freeze({
    table,
    primaryKey,
    columns,
    indexes: Object.freeze(indexes),
    relations: Object.freeze(relations),
    softDelete,
    generate: def.generate ?? null,
  })
  return Object.freeze({ def, info, table })
}

/**
 * Relations must be answerable by one batched index lookup (never a table scan): the foreign key
 * is the related primary key or the first column of one of its indexes, with the same type.
 */
export function checkRelations(models: readonly AnyModel[]): void {
  const byTable = new Map(models.map((m) => [m.info.table, m]))
  for (const m of models) {
    for (const [name, rel] of Object.entries(m.info.relations)) {
      const target = rel.model()
      if (!target || !target.info) throw bad(`${m.info.table}.${name}: model() returned no model`)
      if (byTable.get(target.info.table) !== target) {
        throw bad(`${m.info.table}.${name}: related model ${target.info.table} is not in openDatabase({ models })`, {
          table: m.info.table,
          relation: name,
        })
      }
      const fk = target.info.columns.get(rel.foreignKey)
      if (!fk) throw bad(`${m.info.table}.${name}: foreignKey ${rel.foreignKey} is not a column of ${target.info.table}`)
      const lk = m.info.columns.get(rel.localKey)!
      if (fk.type !== lk.type) throw bad(`${m.info.table}.${name}: localKey and foreignKey types differ`)
      const indexed = target.info.primaryKey === rel.foreignKey || target.info.indexes.some((ix) => ix.columns[0] === rel.foreignKey)
      if (!indexed) {
        throw bad(
          `${m.info.table}.${name}: ${target.info.table}.${rel.foreignKey} must be indexed (eager loading is one index lookup, never a scan)`,
          { table: m.info.table, relation: name },
        )
      }
    }
  }
}
