import { AsyncLocalStorage } from 'node:async_hooks'
import { CausewayError, isSiteId, systemClock, type Site } from '@causeway/core'
import type { Backend, Executor } from './backend.js'
import {
  buildCount,
  buildDelete,
  buildInsert,
  buildSelect,
  buildSoftDelete,
  buildUpdate,
  rowFromCanon,
  type Clock,
  type FindInput,
  type WhereInput,
} from './builder.js'
import { openCausewayBackend } from './causeway.js'
import {
  checkRelations,
  type AnyModel,
  type InsertOfModel,
  type ModelInfo,
  type RelationName,
  type RowOfModel,
  type WithRelations,
} from './model.js'
import type { CanonRow, Direction, SelectNode, StatementNode } from './nodes.js'
import { openSqliteBackend } from './sqlite.js'

type Cols<M> = keyof RowOfModel<M> & string
type Ops<T> = { eq?: T; ne?: T; in?: readonly T[]; gt?: T; gte?: T; lt?: T; lte?: T }
export type Where<M> = { [K in Cols<M>]?: RowOfModel<M>[K] | Ops<RowOfModel<M>[K]> }
export type OrderBy<M> = ReadonlyArray<readonly [Cols<M>, Direction?] | Cols<M>>

export interface FindOptions<M, W extends string = never> {
  where?: Where<M>
  /** Ties are broken by the primary key (in the direction of the last item). */
  orderBy?: OrderBy<M>
  limit?: number
  offset?: number
  /** Keyset pagination: the last row of the previous page. */
  after?: Partial<RowOfModel<M>>
  /** Relations to load eagerly: one batched index lookup per relation. */
  with?: readonly W[]
  /** Include soft-deleted rows. */
  withDeleted?: boolean
}

export interface InsertOptions {
  /** Home site of the new rows (the site that serves their compare-and-swap); default: this site. */
  home?: string
}

export interface UpdateOptions<M> {
  /** Compare-and-swap: only rows also matching `expect` change (linearizable at the row's home site). */
  expect?: Where<M>
  withDeleted?: boolean
}

export interface Repository<M extends AnyModel> {
  readonly model: M
  insert(row: InsertOfModel<M>, options?: InsertOptions): Promise<RowOfModel<M>>
  insertMany(rows: readonly InsertOfModel<M>[], options?: InsertOptions): Promise<RowOfModel<M>[]>
  findOne<W extends RelationName<M> = never>(
    where: Where<M>,
    options?: { with?: readonly W[]; withDeleted?: boolean },
  ): Promise<WithRelations<M, W> | undefined>
  find<W extends RelationName<M> = never>(query?: FindOptions<M, W>): Promise<WithRelations<M, W>[]>
  count(where?: Where<M>, options?: { withDeleted?: boolean }): Promise<number>
  /** -> number of rows changed (matched by where, and by expect when given). */
  update(where: Where<M>, set: Partial<RowOfModel<M>>, options?: UpdateOptions<M>): Promise<number>
  softDelete(where: Where<M>): Promise<number>
  /** Hard delete (soft-deleted rows only with { withDeleted: true }). */
  delete(where: Where<M>, options?: { withDeleted?: boolean }): Promise<number>
  /** The site that serves compare-and-swap for this row; undefined when the row does not exist here. */
  homeSite(pk: RowOfModel<M>[M['def']['primaryKey']]): Promise<string | undefined>
  /** The operation tree `find` would run (frozen, serialisable). */
  compileFind(query?: FindOptions<M, never>): SelectNode
}

export interface Transaction {
  repository<M extends AnyModel>(model: M): Repository<M>
}

export interface Database extends Transaction {
  readonly backend: 'sqlite' | 'causeway'
  /** The site id (SQLite: the `siteId` option, default 'local'). */
  readonly siteId: string
  readonly models: readonly AnyModel[]
  /**
   * Run fn in a transaction: all of its writes or none. On Causeway they become visible at other
   * sites together or not at all (one atomic multi-key write), and rows written are locked in-process.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>
  close(): Promise<void>
}

interface CommonOptions {
  models: readonly AnyModel[]
  /** Time source for soft-delete timestamps (default: the system clock). */
  clock?: Clock
}
export type OpenDatabaseOptions =
  | (CommonOptions & { backend: 'sqlite'; file?: string; siteId?: string })
  | (CommonOptions & { backend: 'causeway'; site: Site; lockTimeoutMs?: number })


/** Databases whose transaction callback is running in the current async context. */
const inTransaction = new AsyncLocalStorage<ReadonlySet<object>>()

/**
 * Using the database itself (not `tx`) inside its own transaction callback would wait for the
 * transaction to end (SQLite: forever; Causeway: until the row lock times out), so fail fast.
 */
function checkNotInOwnTransaction(db: object): void {
  if (inTransaction.getStore()?.has(db)) {
    throw new CausewayError('INVALID_ARGUMENT', 'inside db.transaction(fn), use tx.repository(...), not db.repository(...) or a nested db.transaction')
  }
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (!options || typeof options !== 'object') throw new CausewayError('INVALID_OPTIONS', 'openDatabase needs options')
  const { models } = options
  if (!Array.isArray(models) || models.some((m) => !m || !m.info)) {
    throw new CausewayError('INVALID_OPTIONS', 'models must be an array of defineModel() results')
  }
  const tables = new Set<string>()
  for (const m of models) {
    if (tables.has(m.info.table)) throw new CausewayError('INVALID_MODEL', `table ${m.info.table} defined twice`)
    tables.add(m.info.table)
  }
  checkRelations(models)
  const infos = models.map((m) => m.info)
  const clock = options.clock ?? systemClock
  let backend: Backend
  switch (options.backend) {
    case 'sqlite':
      backend = await openSqliteBackend(infos, { file: options.file, siteId: options.siteId })
      break
    case 'causeway':
      backend = await openCausewayBackend(options.site, infos, { lockTimeoutMs: options.lockTimeoutMs })
      break
    default:
      throw new CausewayError('INVALID_OPTIONS', `unknown backend ${String((options as { backend: unknown }).backend)}`)
  }
  return new DatabaseImpl(backend, models, clock)
}

class DatabaseImpl implements Database {
  private readonly repos = new Map<AnyModel, Repository<AnyModel>>()
  constructor(
    private readonly impl: Backend,
    readonly models: readonly AnyModel[],
    private readonly clock: Clock,
  ) {}
  get backend(): 'sqlite' | 'causeway' {
    return this.impl.kind
  }
  get siteId(): string {
    return this.impl.siteId
  }
  repository<M extends AnyModel>(model: M): Repository<M> {
    let r = this.repos.get(model)
    if (!r) {
      r = new RepositoryImpl(model, this.impl, this.models, this.clock, this) as unknown as Repository<AnyModel>
      this.repos.set(model, r)
    }
    return r as unknown as Repository<M>
  }
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    if (typeof fn !== 'function') throw new CausewayError('INVALID_ARGUMENT', 'transaction needs a function')
    checkNotInOwnTransaction(this)
    const active = new Set([...(inTransaction.getStore() ?? []), this])
    return this.impl.transaction((ex) => {
      const repos = new Map<AnyModel, Repository<AnyModel>>()
      const tx: Transaction = {
        repository: <M extends AnyModel>(model: M): Repository<M> => {
          let r = repos.get(model)
          if (!r) {
            r = new RepositoryImpl(model, ex, this.models, this.clock, null) as unknown as Repository<AnyModel>
            repos.set(model, r)
          }
          return r as unknown as Repository<M>
        },
      }
      return inTransaction.run(active, () => fn(tx))
    })
  }
  close(): Promise<void> {
    return this.impl.close()
  }
}

class RepositoryImpl<M extends AnyModel> implements Repository<M> {
  private readonly info: ModelInfo
  constructor(
    readonly model: M,
    private readonly ex: Executor,
    models: readonly AnyModel[],
    private readonly clock: Clock,
    /** The database, for repositories outside a transaction (null inside one). */
    private readonly owner: object | null,
  ) {
    if (!model || !model.info || !models.includes(model)) {
      throw new CausewayError('INVALID_MODEL', `model ${String(model?.info?.table)} is not in openDatabase({ models })`)
    }
    this.info = model.info
  }

  private async run(node: StatementNode): Promise<CanonRow[] | number> {
    if (this.owner) checkNotInOwnTransaction(this.owner)
    return this.ex.execute(node)
  }
  private toRows(rows: CanonRow[]): RowOfModel<M>[] {
    return rows.map((r) => rowFromCanon(this.info, r) as RowOfModel<M>)
  }
  private home(options: InsertOptions | undefined): string | null {
    if (options?.home === undefined) return null
    if (!isSiteId(options.home)) {
      throw new CausewayError('INVALID_ARGUMENT', `bad home site id ${String(options.home)}`)
    }
    return options.home
  }

  async insert(row: InsertOfModel<M>, options?: InsertOptions): Promise<RowOfModel<M>> {
    const node = buildInsert(this.info, [row], this.home(options))
    return this.toRows((await this.run(node)) as CanonRow[])[0]!
  }
  async insertMany(rows: readonly InsertOfModel<M>[], options?: InsertOptions): Promise<RowOfModel<M>[]> {
    const node = buildInsert(this.info, rows as unknown[], this.home(options))
    if (node.rows.length === 0) return []
    return this.toRows((await this.run(node)) as CanonRow[])
  }
  async findOne<W extends RelationName<M> = never>(
    where: Where<M>,
    options: { with?: readonly W[]; withDeleted?: boolean } = {},
  ): Promise<WithRelations<M, W> | undefined> {
    const rows = await this.find<W>({ where, limit: 1, with: options.with, withDeleted: options.withDeleted })
    return rows[0]
  }
  compileFind(query: FindOptions<M, never> = {}): SelectNode {
    return buildSelect(this.info, query as FindInput)
  }
  async find<W extends RelationName<M> = never>(query: FindOptions<M, W> = {}): Promise<WithRelations<M, W>[]> {
    const node = buildSelect(this.info, query as FindInput)
    const withs = this.checkWith(query.with)
    const rows = this.toRows((await this.run(node)) as CanonRow[]) as Record<string, unknown>[]
    // The relations' lookups are independent: run them together, attach them in the requested order.
    const loaded = await Promise.all(withs.map((name) => this.loadRelation(name, rows)))
    loaded.forEach((attach) => attach())
    return rows as WithRelations<M, W>[]
  }
  private checkWith(w: readonly string[] | undefined): string[] {
    if (w === undefined) return []
    if (!Array.isArray(w)) throw new CausewayError('INVALID_QUERY', `${this.info.table}: with must be an array of relation names`)
    for (const name of w) {
      if (typeof name !== 'string' || !Object.hasOwn(this.info.relations, name)) {
        throw new CausewayError('INVALID_QUERY', `${this.info.table}: unknown relation ${String(name)}`, { details: { table: this.info.table, relation: name } })
      }
    }
    return [...new Set(w)]
  }
  /** One batched `in` lookup on the related model's indexed foreign key; resolves to the step that attaches the results. */
  private async loadRelation(name: string, rows: Record<string, unknown>[]): Promise<() => void> {
    const rel = this.info.relations[name]!
    const target = rel.model()
    const keys = [...new Set(rows.map((r) => r[rel.localKey]).filter((v) => v !== null && v !== undefined))]
    const related = keys.length
      ? this.toRelated(target.info, (await this.run(buildSelect(target.info, { where: { [rel.foreignKey]: { in: keys } } }))) as CanonRow[])
      : []
    const groups = new Map<unknown, Record<string, unknown>[]>()
    for (const r of related) {
      const k = keyOf(r[rel.foreignKey])
      let g = groups.get(k)
      if (!g) groups.set(k, (g = []))
      g.push(r)
    }
    return () => {
      for (const row of rows) {
        const g = groups.get(keyOf(row[rel.localKey])) ?? []
        row[name] = rel.kind === 'many' ? g : (g[0] ?? null)
      }
    }
  }
  private toRelated(info: ModelInfo, rows: CanonRow[]): Record<string, unknown>[] {
    return rows.map((r) => rowFromCanon(info, r))
  }
  async count(where?: Where<M>, options: { withDeleted?: boolean } = {}): Promise<number> {
    return (await this.run(buildCount(this.info, where as WhereInput | undefined, options.withDeleted))) as number
  }
  async update(where: Where<M>, set: Partial<RowOfModel<M>>, options: UpdateOptions<M> = {}): Promise<number> {
    const node = buildUpdate(this.info, where as WhereInput, set, options as { expect?: WhereInput; withDeleted?: boolean })
    return (await this.run(node)) as number
  }
  async softDelete(where: Where<M>): Promise<number> {
    return (await this.run(buildSoftDelete(this.info, where as WhereInput, this.clock))) as number
  }
  async delete(where: Where<M>, options: { withDeleted?: boolean } = {}): Promise<number> {
    return (await this.run(buildDelete(this.info, where as WhereInput, options.withDeleted))) as number
  }
  async homeSite(pk: RowOfModel<M>[M['def']['primaryKey']]): Promise<string | undefined> {
    const col = this.info.columns.get(this.info.primaryKey)!
    const ok = col.type === 'int' ? Number.isSafeInteger(pk) : typeof pk === 'string' && pk !== ''
    if (!ok) throw new CausewayError('INVALID_QUERY', `${this.info.table}: bad primary key`)
    return this.ex.homeSite(this.info.table, pk as string | number)
  }
}

function keyOf(v: unknown): unknown {
  return v instanceof Date ? v.getTime() : v
}
