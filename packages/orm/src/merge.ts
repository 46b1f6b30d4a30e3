/**
 * How an ORM row is stored in Causeway, and how concurrent versions of it merge.
 *
 *   { orm: 1,
 *     i: [time, site, home],            // incarnation: stamp of the insert + the row's home site
 *     d?: [time, site],                 // hard-delete marker
 *     c: { col: [value, time, site] } } // each column with the stamp of its last write
 *
 * Stamps are Lamport versions from site.tick(). Merge = per field maximum by stamp, a semilattice,
 * hence commutative, associative and idempotent: concurrent updates of different columns at
 * different sites both survive, the same column goes to the latest writer. A row is alive while
 * its incarnation is newer than its delete marker, so a hard delete wins over concurrent updates
 * (updates never touch `i`) and a later re-insert of the same key brings it back.
 */
import type { ConflictMode, ConflictOption, ConflictSpec, Entry, MergeFunction, Value } from '@causeway/core'
import type { AnyModel } from './model.js'
import type { CanonRow, CanonValue } from './nodes.js'

export type Stamp = readonly [time: number, site: string]
export type RowValue = {
  orm: 1
  i: [number, string, string]
  d?: [number, string]
  c: Record<string, [CanonValue, number, string]>
}

export function cmpStamp(at: number, as: string, bt: number, bs: string): number {
  if (at !== bt) return at < bt ? -1 : 1
  if (as === bs) return 0
  return as < bs ? -1 : 1
}

export function isRowValue(v: unknown): v is RowValue {
  return (
    v !== null &&
    typeof v === 'object' &&
    (v as { orm?: unknown }).orm === 1 &&
    Array.isArray((v as { i?: unknown }).i) &&
    typeof (v as { c?: unknown }).c === 'object'
  )
}

export function isAlive(v: RowValue): boolean {
  return !v.d || cmpStamp(v.i[0], v.i[1], v.d[0], v.d[1]) > 0
}

export function rowOf(v: RowValue): CanonRow {
  const out: Record<string, CanonValue> = {}
  for (const [k, cell] of Object.entries(v.c)) out[k] = cell[0]
  return out
}

/** Deterministic tie-break for two different values carrying the same stamp (never produced by the ORM itself). */
function valueOrder(a: CanonValue, b: CanonValue): number {
  const sa = JSON.stringify(a)
  const sb = JSON.stringify(b)
  return sa < sb ? -1 : sa > sb ? 1 : 0
}

function mergeRows(a: RowValue, b: RowValue): RowValue {
  const ci = cmpStamp(a.i[0], a.i[1], b.i[0], b.i[1])
  const i = ci > 0 || (ci === 0 && a.i[2] >= b.i[2]) ? a.i : b.i
  let d = a.d ?? b.d
  if (a.d && b.d) d = cmpStamp(a.d[0], a.d[1], b.d[0], b.d[1]) >= 0 ? a.d : b.d
  const c: RowValue['c'] = {}
  for (const k of new Set([...Object.keys(a.c), ...Object.keys(b.c)])) {
    const x = a.c[k]
    const y = b.c[k]
    if (!x) c[k] = y!
    else if (!y) c[k] = x
    else {
      const s = cmpStamp(x[1], x[2], y[1], y[2])
      c[k] = s > 0 || (s === 0 && valueOrder(x[0], y[0]) >= 0) ? x : y
    }
  }
  const out: RowValue = { orm: 1, i: [...i], c }
  if (d) out.d = [...d]
  return out
}

/**
 * The row an entry holds: its concurrent siblings (rows live under core's SIBLINGS_PREFIX, where
 * every site keeps them) merged here, so the result is the same at every site that holds the same
 * siblings. Under a site configured with rowMerge (ormConflicts) the site has merged them already.
 */
export function rowValueOf(entry: Entry | undefined): RowValue | undefined {
  if (!entry) return undefined
  if (!entry.siblings) return isRowValue(entry.value) ? entry.value : undefined
  let out: RowValue | undefined
  for (const s of entry.siblings) {
    if (!isRowValue(s.value)) continue
    out = out ? mergeRows(out, s.value) : s.value
  }
  return out
}

/**
 * The merge function for ORM rows: pass it to openSite for the ORM tables' prefixes (see
 * ormConflicts). Values that are not ORM rows fall back to a deterministic choice.
 */
export const rowMerge: MergeFunction & { readonly causewayOrmRowMerge: true } = Object.assign(
  (a: Value, b: Value): Value => {
    const ra = isRowValue(a)
    const rb = isRowValue(b)
    if (ra && rb) return mergeRows(a, b) as unknown as Value
    if (ra !== rb) return ra ? a : b
    const sa = JSON.stringify(a)
    const sb = JSON.stringify(b)
    return sa >= sb ? a : b
  },
  { causewayOrmRowMerge: true as const },
)

/**
 * Conflict configuration for openSite: per-column merge for every ORM table, `base` (default
 * 'lww') for everything else.
 *
 * @deprecated Not needed: rows live under core's SIBLINGS_PREFIX, which keeps concurrent versions
 * at every site whatever its configuration, and the ORM merges them. A site opened with it keeps
 * the earlier layout (rows at `<table>/<pk>`, merged by the site) so that its existing data stays
 * readable; every site of a deployment must then use it (conflicts must agree anyway).
 */
export function ormConflicts(models: readonly AnyModel[], base: ConflictOption = 'lww'): ConflictOption {
  const prefixes: Record<string, ConflictSpec> = {}
  let dflt: ConflictSpec | undefined = 'lww'
  if (typeof base === 'object' && base !== null && !('merge' in base)) {
    dflt = base.default
    Object.assign(prefixes, base.prefixes ?? {})
  } else {
    dflt = base
  }
  for (const m of models) prefixes[`${m.info.table}/`] = rowMerge
  return dflt === undefined ? { prefixes } : { default: dflt, prefixes }
}
