/**
 * Causeway backend: a row is one key `~siblings/orm/<table>/<pk>` holding a per-column-stamped value
 * (merge.ts). Core keeps concurrent versions of keys under its SIBLINGS_PREFIX at every site, whatever
 * the site's `conflicts`, and the ORM merges them when it reads (rowValueOf), so every site computes
 * the same row with no configuration (a site opened with ormConflicts keeps the earlier layout
 * `<table>/<pk>`, merged by the site);
 * secondary indexes are site-maintained (ensureIndex), so where/orderBy/limit/after run as index
 * range scans; a transaction is one atomic multi-key write; compare-and-swap is serialized per row
 * at the row's home site.
 */
import { CausewayError, joinContexts, SIBLINGS_PREFIX, type Entry, type Session, type Site, type Value, type WriteOp } from '@causeway/core'
import type { Backend, Executor } from './backend.js'
import { compareRows, compareStrings, isAfter, matches } from './eval.js'
import { AFTER_SEP, encodeScalar, encodeTerm, rowKey, SEP } from './encode.js'
import { isAlive, rowOf, rowValueOf, type RowValue } from './merge.js'
import type { ModelInfo } from './model.js'
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

export interface CausewayBackendOptions {
  /** How long a transaction waits for a row lock held by another transaction (default 5000 ms; then CONFLICT). */
  lockTimeoutMs?: number
}

/** State shared by every Database opened on the same site object (locks, sequences and causal history are per site). */
interface SiteShared {
  mutex: KeyedMutex
  seq: Map<string, { next: number; limit: number }>
  /**
   * The causal past of every completed ORM write at this site, as an (opaque) context token joined
   * from the writing sessions' contexts. Each write session starts from it, so a write depends on
   * every write that completed before it began (what a client calling one after the other can
   * observe), while writes in flight together are concurrent and share group commits.
   */
  token?: string
  /** Contexts of writes completed since `token` was last joined (joined lazily, at most JOIN_BATCH). */
  pending: string[]
}
const shared = new WeakMap<Site, SiteShared>()
function sharedOf(site: Site): SiteShared {
  let s = shared.get(site)
  if (!s) shared.set(site, (s = { mutex: new KeyedMutex(), seq: new Map(), pending: [] }))
  return s
}

const SEQ_BLOCK = 64
const JOIN_BATCH = 64
const MAX_KEY_BYTES = 1024

type Ix = { name: string; columns: readonly string[] }
type Bound = { value: string; inclusive: boolean }
type Range = { lower?: Bound; upper?: Bound }
type Plan =
  | { kind: 'keys'; keys: string[] }
  | { kind: 'index'; index: Ix; ranges: Range[]; ordered: boolean; reverse: boolean; fixed: Map<string, Scalar> }

/** Where a model's rows live: see the file comment. */
function rowBaseOf(site: Site, table: string): string {
  const mode: unknown = site.conflictMode(`${table}/x`)
  return typeof mode === 'function' && (mode as { causewayOrmRowMerge?: boolean }).causewayOrmRowMerge === true ? table : `${SIBLINGS_PREFIX}orm/${table}`
}

/**
 * Refuse to open over rows kept in the other layout (a site whose ormConflicts option was dropped,
 * or added, after rows were written): its tables would look empty, and writes would fork them.
 */
async function checkLayout(site: Site, table: string, base: string): Promise<void> {
  const other = base === table ? `${SIBLINGS_PREFIX}orm/${table}/` : `${table}/`
  for await (const key of site.scanKeys(other, { limit: 8 })) {
    if (base === table || rowValueOf(await site.session().get(key))) {
      throw new CausewayError(
        'INVALID_OPTIONS',
        base === table
          ? `site ${site.id}: rows of '${table}' are stored under '${other}' (sites opened without ormConflicts); open this site without ormConflicts`
          : `site ${site.id}: rows of '${table}' are stored under '${other}' by an earlier layout; open every site with conflicts: ormConflicts(models) to keep using them`,
        { details: { table, found: key } },
      )
    }
  }
}

export async function openCausewayBackend(site: Site, models: readonly ModelInfo[], opts: CausewayBackendOptions = {}): Promise<Backend> {
  if (!site || typeof site.session !== 'function' || typeof site.ensureIndex !== 'function' || typeof site.conflictMode !== 'function') {
    throw new CausewayError('INVALID_OPTIONS', 'backend causeway needs { site } from openSite()')
  }
  for (const m of models) {
    const u = m.indexes.find((ix) => ix.unique)
    if (u) {
      throw new CausewayError(
        'INVALID_MODEL',
        `${m.table}: unique index (${u.columns.join(', ')}) cannot be enforced across sites without coordination; ` +
          'use a generated primary key (the key is unique by construction) or drop unique',
        { details: { table: m.table, columns: u.columns } },
      )
    }
  }
  const bases = new Map(models.map((m) => [m.table, rowBaseOf(site, m.table)]))
  for (const m of models) await checkLayout(site, m.table, bases.get(m.table)!)
  const keyOf = (model: ModelInfo, pk: Scalar): string => rowKey(bases.get(model.table)!, pk)
  const lockTimeoutMs = opts.lockTimeoutMs ?? 5000
  const byTable = new Map(models.map((m) => [m.table, m]))
  const indexes = new Map<string, Ix[]>()
  for (const m of models) {
    const list: Ix[] = [{ name: `${m.table}--pk`, columns: [m.primaryKey] }]
    m.indexes.forEach((ix, i) => list.push({ name: `${m.table}--${i}`, columns: ix.columns }))
    indexes.set(m.table, list)
    for (const ix of list) {
      const cols = ix.columns
      await site.ensureIndex({
        name: ix.name,
        prefix: `${bases.get(m.table)!}/`,
        fingerprint: `orm1:${cols.map((c) => `${c}:${m.columns.get(c)!.type}`).join(',')}`,
        terms: (_key: string, entry: Entry | undefined): string[] => {
          const v = rowValueOf(entry)
          if (!v || !isAlive(v)) return []
          return [encodeTerm(cols.map((c) => v.c[c]?.[0] ?? null))]
        },
      })
    }
  }
  const history = sharedOf(site)
  const { mutex, seq } = history
  // Sessions run their operations one after the other, so one shared session would serialize every
  // read and every commit of the database (one fsync at a time). Instead each query reads through a
  // fresh session, and each transaction reads its rows under lock and commits through its own
  // session (so a put never claims to supersede a version its computation did not include), which
  // continues the causal past of the writes completed so far (see SiteShared.deps).
  const joinPending = (): void => {
    if (history.pending.length === 0) return
    const all = history.token === undefined ? history.pending : [history.token, ...history.pending]
    history.token = joinContexts(all)
    history.pending = []
  }
  const writeSession = (): Session => {
    joinPending()
    if (history.token === undefined) return site.session()
    // A completed write can precede an earlier one of its stream that is still being applied (a
    // multi-shard write): the dependency then waits for that one, which is already on its way.
    return site.session({ context: history.token, waitMs: lockTimeoutMs })
  }
  /** After a session's write completed: later write sessions depend on it. */
  const wrote = (s: Session): void => {
    history.pending.push(s.context())
    if (history.pending.length >= JOIN_BATCH) joinPending()
  }
  let closed = false
  const check = (): void => {
    if (closed) throw new CausewayError('CLOSED', 'database is closed')
  }

  const modelOf = (table: string): ModelInfo => {
    const m = byTable.get(table)
    if (!m) throw new CausewayError('INVALID_MODEL', `unknown table ${table}`)
    return m
  }

  // ---------------------------------------------------------------- planning

  function analyze(where: WhereNode): Array<Extract<WhereNode, { kind: 'cmp' }>> {
    switch (where.kind) {
      case 'and':
        return where.items.flatMap(analyze)
      case 'cmp':
        return [where]
      default:
        return assertNever(where)
    }
  }

  function plan(model: ModelInfo, where: WhereNode, orderBy: readonly OrderItem[] | null): Plan {
    const cmps = analyze(where)
    const eq = new Map<string, Scalar>()
    const inn = new Map<string, readonly Scalar[]>()
    const lo = new Map<string, { v: Scalar; inclusive: boolean }>()
    const hi = new Map<string, { v: Scalar; inclusive: boolean }>()
    for (const c of cmps) {
      switch (c.op) {
        case 'eq':
          if (!eq.has(c.column)) eq.set(c.column, c.value)
          break
        case 'in':
          if (!inn.has(c.column)) inn.set(c.column, c.value)
          break
        case 'gt':
        case 'gte':
          if (!lo.has(c.column)) lo.set(c.column, { v: c.value, inclusive: c.op === 'gte' })
          break
        case 'lt':
        case 'lte':
          if (!hi.has(c.column)) hi.set(c.column, { v: c.value, inclusive: c.op === 'lte' })
          break
        case 'ne':
          break
        default:
          return assertNever(c, 'operator')
      }
    }
    const pk = model.primaryKey
    if (eq.has(pk)) {
      const v = eq.get(pk)!
      return { kind: 'keys', keys: v === null ? [] : [keyOf(model, v)] } // a primary key is never NULL
    }
    if (inn.has(pk)) return { kind: 'keys', keys: [...new Set(inn.get(pk)!.filter((v) => v !== null).map((v) => keyOf(model, v)))] }

    type Cand = { plan: Extract<Plan, { kind: 'index' }>; score: number }
    const cands: Cand[] = []
    for (const ix of indexes.get(model.table)!) {
      const cols = ix.columns
      let j = 0
      while (j < cols.length && eq.has(cols[j]!)) j++
      const prefixVals = cols.slice(0, j).map((c) => eq.get(c)!)
      const P = j > 0 ? encodeTerm(prefixVals) + (j < cols.length ? SEP : '') : ''
      const prefixEnd = j > 0 && j < cols.length ? P.slice(0, -1) + AFTER_SEP : undefined
      let ranges: Range[]
      let score = j * 4
      let usesIn = false
      if (j === cols.length) {
        ranges = [{ lower: { value: P, inclusive: true }, upper: { value: P, inclusive: true } }]
      } else {
        const c = cols[j]!
        const last = j === cols.length - 1
        if (inn.has(c)) {
          usesIn = true
          score += 2
          ranges = [...new Set(inn.get(c)!)].sort(cmpScalarForSort).map((v) => {
            const t = P + encodeScalar(v)
            return last
              ? { lower: { value: t, inclusive: true }, upper: { value: t, inclusive: true } }
              : { lower: { value: t + SEP, inclusive: true }, upper: { value: t + AFTER_SEP, inclusive: false } }
          })
        } else if (lo.has(c) || hi.has(c)) {
          score += 1
          const l = lo.get(c)
          const h = hi.get(c)
          const r: Range = {}
          // Ranges never match NULL, so start above the NULL tag at least.
          r.lower = l ? { value: P + encodeScalar(l.v) + (l.inclusive ? '' : AFTER_SEP), inclusive: true } : { value: P + '1', inclusive: true }
          if (h) r.upper = { value: P + encodeScalar(h.v) + (h.inclusive ? AFTER_SEP : ''), inclusive: false }
          else if (prefixEnd !== undefined) r.upper = { value: prefixEnd, inclusive: false }
          ranges = [r]
        } else {
          ranges = [P === '' ? {} : { lower: { value: P, inclusive: true }, upper: { value: prefixEnd!, inclusive: false } }]
        }
      }
      // Does the index order (remaining columns, then key = primary key) equal the requested order?
      let ordered = false
      let reverse = false
      if (orderBy && !usesIn) {
        const seqCols = cols.slice(j).filter((c) => !eq.has(c))
        if (seqCols[seqCols.length - 1] !== pk) seqCols.push(pk)
        const target = orderBy.filter((o) => !eq.has(o.column))
        const dir = target[0]?.direction ?? 'asc'
        ordered = target.length === seqCols.length && target.every((o, i) => o.column === seqCols[i] && o.direction === dir)
        reverse = dir === 'desc'
      }
      cands.push({ plan: { kind: 'index', index: ix, ranges, ordered, reverse, fixed: eq }, score })
    }
    const best = (xs: Cand[]): Cand | undefined => xs.reduce<Cand | undefined>((b, x) => (!b || x.score > b.score ? x : b), undefined)
    const bestOrdered = best(cands.filter((c) => c.plan.ordered))
    const bestAny = best(cands)!
    if (bestOrdered && (bestOrdered.score >= bestAny.score || bestAny.score === 0)) return bestOrdered.plan
    return bestAny.plan
  }

  async function* scan(p: Extract<Plan, { kind: 'index' }>, start: Bound | null): AsyncGenerator<string> {
    for (const r of p.ranges) {
      const opts: { gt?: string; gte?: string; lt?: string; lte?: string; reverse?: boolean } = { reverse: p.reverse }
      let lower = r.lower
      let upper = r.upper
      // Keyset start: tighten the bound on the scan's leading side.
      if (start) {
        if (!p.reverse && (!lower || compareStrings(start.value, lower.value) > 0)) lower = start
        if (p.reverse && (!upper || compareStrings(start.value, upper.value) < 0)) upper = start
      }
      if (lower) opts[lower.inclusive ? 'gte' : 'gt'] = lower.value
      if (upper) opts[upper.inclusive ? 'lte' : 'lt'] = upper.value
      if (lower && upper) {
        const c = compareStrings(lower.value, upper.value)
        if (c > 0 || (c === 0 && !(lower.inclusive && upper.inclusive))) continue
      }
      for await (const { key } of site.scanIndex(p.index.name, opts)) yield key
    }
  }

  // ---------------------------------------------------------------- reading

  type Overlay = Map<string, RowValue>

  async function fetch(keys: string[], overlay: Overlay | null): Promise<Map<string, RowValue>> {
    const out = new Map<string, RowValue>()
    const missing: string[] = []
    for (const k of keys) {
      const o = overlay?.get(k)
      if (o) out.set(k, o)
      else missing.push(k)
    }
    if (missing.length) {
      const got = await site.session().getMany(missing)
      for (const [k, e] of got) {
        const v = rowValueOf(e)
        if (v) out.set(k, v)
      }
    }
    return out
  }

  async function select(node: SelectNode, overlay: Overlay | null): Promise<CanonRow[]> {
    const model = modelOf(node.table)
    const pending = overlay ? [...overlay.keys()].filter((k) => k.startsWith(`${bases.get(model.table)!}/`)) : []
    const p = plan(model, node.where, node.orderBy)
    const want = node.limit === null ? Infinity : node.offset + node.limit
    if (want === 0) return []
    const accept = (v: RowValue | undefined): CanonRow | undefined => {
      if (!v || !isAlive(v)) return undefined
      const row = rowOf(v)
      if (!matches(node.where, row)) return undefined
      if (node.after && !isAfter(node.orderBy, row, node.after)) return undefined
      return row
    }
    // Streaming: the index already yields rows in the requested order, so stop at offset + limit.
    if (p.kind === 'index' && p.ordered && pending.length === 0) {
      const start = node.after ? afterBound(p, node.orderBy, node.after) : null
      const out: CanonRow[] = []
      let batch: string[] = []
      let size = Math.min(Math.max(want === Infinity ? 256 : want + 4, 16), 256)
      const flush = async (): Promise<boolean> => {
        const got = await fetch(batch, null)
        for (const k of batch) {
          const row = accept(got.get(k))
          if (row) out.push(row)
          if (out.length >= want) return true
        }
        batch = []
        size = Math.min(size * 2, 2048)
        return false
      }
      for await (const key of scan(p, start)) {
        batch.push(key)
        if (batch.length >= size && (await flush())) break
      }
      if (out.length < want && batch.length) await flush()
      // A row may have changed between the index scan and the read: keep the page exactly ordered.
      out.sort((a, b) => compareRows(node.orderBy, a, b))
      return out.slice(node.offset, want === Infinity ? undefined : want)
    }
    const keys = new Set<string>(pending)
    if (p.kind === 'keys') for (const k of p.keys) keys.add(k)
    else {
      // The ranges of an `in` are independent: scan them concurrently (order is restored by the sort).
      const parts = await Promise.all(
        p.ranges.map(async (r) => {
          const out: string[] = []
          for await (const k of scan({ ...p, ranges: [r] }, null)) out.push(k)
          return out
        }),
      )
      for (const part of parts) for (const k of part) keys.add(k)
    }
    const got = await fetch([...keys], overlay)
    const rows: CanonRow[] = []
    for (const k of keys) {
      const row = accept(got.get(k))
      if (row) rows.push(row)
    }
    rows.sort((a, b) => compareRows(node.orderBy, a, b))
    return rows.slice(node.offset, want === Infinity ? undefined : want)
  }

  /** The scan position of the keyset `after` in an ordered plan's index (whose columns are all known). */
  function afterBound(p: Extract<Plan, { kind: 'index' }>, orderBy: readonly OrderItem[], after: readonly Scalar[]): Bound | null {
    const vals: Scalar[] = []
    for (const c of p.index.columns) {
      if (p.fixed.has(c)) vals.push(p.fixed.get(c)!)
      else {
        const i = orderBy.findIndex((o) => o.column === c)
        if (i < 0) return null
        vals.push(after[i] ?? null)
      }
    }
    // Inclusive of the term: rows with the same term and a later key are filtered by isAfter.
    return { value: encodeTerm(vals), inclusive: true }
  }

  async function count(node: CountNode, overlay: Overlay | null): Promise<number> {
    const rows = await select({ kind: 'select', table: node.table, where: node.where, orderBy: [], limit: null, offset: 0, after: null }, overlay)
    return rows.length
  }

  // ---------------------------------------------------------------- writing

  /** One transaction's state: rows it wrote (read-your-writes) and the row locks it holds. */
  class Tx implements Executor {
    readonly pending: Overlay = new Map()
    /** Lock acquisitions by key (also in flight, so concurrent calls in one transaction share them). */
    private readonly locks = new Map<string, Promise<void>>()
    private readonly releases: Array<() => void> = []
    private done = false
    private session: Session | undefined
    constructor(private readonly explicit: boolean) {}
    private writer(): Session {
      return (this.session ??= writeSession())
    }

    async lock(keys: Iterable<string>): Promise<void> {
      const all = [...new Set(keys)]
      // New keys are taken one after the other in sorted order, so plain operations never deadlock.
      let chain: Promise<void> = Promise.resolve()
      for (const k of all.filter((x) => !this.locks.has(x)).sort()) {
        chain = chain.then(() => mutex.acquire(k, lockTimeoutMs)).then((release) => {
          // A lock granted after the transaction ended (a stray concurrent call) is given back at once.
          if (this.done) release()
          else this.releases.push(release)
        })
        this.locks.set(k, chain)
      }
      await Promise.all(all.map((k) => this.locks.get(k)))
    }
    release(): void {
      this.done = true
      for (const r of this.releases.splice(0).reverse()) r()
    }
    /** Current values under lock: this transaction's own writes, else the site's latest. */
    async current(keys: string[]): Promise<Map<string, RowValue>> {
      const out = new Map<string, RowValue>()
      const missing = keys.filter((k) => {
        const o = this.pending.get(k)
        if (o) out.set(k, o)
        return !o
      })
      if (missing.length) {
        const got = await this.writer().getMany(missing)
        for (const [k, e] of got) {
        const v = rowValueOf(e)
        if (v) out.set(k, v)
      }
      }
      return out
    }
    async commit(): Promise<void> {
      if (this.pending.size === 0) return
      const ops: WriteOp[] = [...this.pending].map(([key, value]) => ({ key, value: value as unknown as Value }))
      const w = this.writer()
      await w.write(ops)
      wrote(w)
    }

    async execute(node: StatementNode): Promise<CanonRow[] | number> {
      check()
      if (this.done) throw new CausewayError('INVALID_ARGUMENT', 'the transaction has ended; use the database or a new transaction')
      switch (node.kind) {
        case 'select':
          return select(node, this.explicit ? this.pending : null)
        case 'count':
          return count(node, this.explicit ? this.pending : null)
        case 'insert':
          return this.serial(() => this.insert(node))
        case 'update':
          return this.serial(() => this.update(node))
        case 'delete':
          return this.serial(() => this.remove(node))
        default:
          return assertNever(node)
      }
    }
    /** Writes of one transaction run one at a time, each on top of the previous one's result. */
    private tail: Promise<unknown> = Promise.resolve()
    private serial<T>(fn: () => Promise<T>): Promise<T> {
      const run = this.tail.then(fn, fn)
      this.tail = run.catch(() => {})
      return run
    }
    homeSite(table: string, pk: string | number): Promise<string | undefined> {
      return homeSite(table, pk, this.explicit ? this.pending : null)
    }

    private async insert(node: InsertNode): Promise<CanonRow[]> {
      const model = modelOf(node.table)
      const rows: Array<Record<string, CanonValue>> = []
      for (const r of node.rows) {
        const row = { ...r }
        if (row[model.primaryKey] === null) row[model.primaryKey] = await nextSeq(model.table)
        rows.push(row)
      }
      const keys = rows.map((r) => checkedKey(model, r[model.primaryKey] as Scalar))
      await this.lock(keys)
      const cur = await this.current(keys)
      keys.forEach((k, i) => {
        const v = cur.get(k)
        if (v && isAlive(v)) {
          throw new CausewayError('CONFLICT', `${model.table}: a row with primary key ${String(rows[i]![model.primaryKey])} exists`, {
            details: { table: model.table, key: k },
          })
        }
      })
      const { time, site: by } = site.tick()
      const home = node.home ?? site.id
      keys.forEach((k, i) => {
        const c: RowValue['c'] = {}
        for (const [col, v] of Object.entries(rows[i]!)) c[col] = [v, time, by]
        const v: RowValue = { orm: 1, i: [time, by, home], c }
        const old = cur.get(k)
        if (old?.d) v.d = [...old.d]
        this.pending.set(k, v)
      })
      return rows
    }

    /** Rows matching `where` now, locked, re-read and re-checked under their locks. */
    private async matching(model: ModelInfo, where: WhereNode): Promise<Map<string, RowValue>> {
      // By primary key (the common case): lock first, then read once under the lock.
      const p = plan(model, where, null)
      const keys =
        p.kind === 'keys'
          ? p.keys
          : (await select({ kind: 'select', table: model.table, where, orderBy: [], limit: null, offset: 0, after: null }, this.pending)).map((r) =>
              keyOf(model, r[model.primaryKey] as Scalar),
            )
      await this.lock(keys)
      const cur = await this.current(keys)
      const out = new Map<string, RowValue>()
      for (const k of keys) {
        const v = cur.get(k)
        if (v && isAlive(v) && matches(where, rowOf(v))) out.set(k, v)
      }
      return out
    }

    private async update(node: UpdateNode): Promise<number> {
      const model = modelOf(node.table)
      const rows = await this.matching(model, node.where)
      if (node.expect) {
        // CAS is linearizable only where the row's writes are serialized: its home site.
        for (const v of rows.values()) {
          if (v.i[2] !== site.id) {
            throw new CausewayError('NOT_HOME_SITE', `${model.table}: compare-and-swap must run at the row's home site ${v.i[2]}`, {
              details: { homeSite: v.i[2], table: model.table, site: site.id },
            })
          }
        }
      }
      const expect = node.expect
      const hits = [...rows].filter(([, v]) => !expect || matches(expect, rowOf(v)))
      if (!hits.length) return 0
      const { time, site: by } = site.tick()
      for (const [k, v] of hits) {
        const c = { ...v.c }
        for (const [col, val] of Object.entries(node.set)) c[col] = [val, time, by]
        this.pending.set(k, { ...v, c })
      }
      return hits.length
    }

    private async remove(node: DeleteNode): Promise<number> {
      const model = modelOf(node.table)
      const rows = await this.matching(model, node.where)
      if (!rows.size) return 0
      const { time, site: by } = site.tick()
      for (const [k, v] of rows) this.pending.set(k, { orm: 1, i: v.i, d: [time, by], c: {} })
      return rows.size
    }
  }

  function checkedKey(model: ModelInfo, pk: Scalar): string {
    const k = keyOf(model, pk)
    if (Buffer.byteLength(k, 'utf8') > MAX_KEY_BYTES) {
      throw new CausewayError('INVALID_ROW', `${model.table}: primary key too long (key over ${MAX_KEY_BYTES} bytes)`)
    }
    return k
  }

  /** `<site>-<counter>`: unique across sites without coordination; the counter is reserved in blocks and persisted. */
  async function nextSeq(table: string): Promise<string> {
    const key = `__orm/seq/${table}/${site.id}`
    const release = await mutex.acquire(key)
    try {
      let s = seq.get(table)
      if (!s || s.next >= s.limit) {
        const w = writeSession()
        const e = await w.get(key)
        const persisted = typeof e?.value === 'number' ? e.value : 0
        const next = Math.max(persisted, s?.limit ?? 0)
        s = { next, limit: next + SEQ_BLOCK }
        await w.put(key, s.limit)
        wrote(w)
        seq.set(table, s)
      }
      s.next += 1
      return `${site.id}-${String(s.next).padStart(12, '0')}`
    } finally {
      release()
    }
  }

  async function homeSite(table: string, pk: string | number, overlay: Overlay | null): Promise<string | undefined> {
    const model = modelOf(table)
    const k = keyOf(model, pk)
    const v = (await fetch([k], overlay)).get(k)
    return v && isAlive(v) ? v.i[2] : undefined
  }

  async function runTx<T>(explicit: boolean, fn: (tx: Tx) => Promise<T>): Promise<T> {
    check()
    const tx = new Tx(explicit)
    try {
      const result = await fn(tx)
      await tx.commit()
      return result
    } finally {
      tx.release()
    }
  }

  return {
    kind: 'causeway',
    siteId: site.id,
    async execute(node) {
      check()
      switch (node.kind) {
        case 'select':
          return select(node, null)
        case 'count':
          return count(node, null)
        case 'insert':
        case 'update':
        case 'delete':
          return runTx(false, (tx) => tx.execute(node))
        default:
          return assertNever(node)
      }
    },
    homeSite: (table, pk) => homeSite(table, pk, null),
    transaction: (fn) => runTx(true, (tx) => fn(tx)),
    async close() {
      closed = true
    },
  }
}

function cmpScalarForSort(a: Scalar, b: Scalar): number {
  return compareStrings(encodeScalar(a), encodeScalar(b))
}
