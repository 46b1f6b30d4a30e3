/**
 * Reference semantics of where/orderBy over canonical rows. The Causeway backend evaluates with
 * these (after its index scans); the SQLite compiler must produce the same answers, which the
 * property tests check.
 */
import { assertNever, type CanonRow, type CanonValue, type OrderItem, type Scalar, type WhereNode } from './nodes.js'

/**
 * Strings compare by code point (= UTF-8 byte order), which is how SQLite's BINARY collation and
 * the site's LevelDB-backed indexes order them (plain `<` compares UTF-16 units).
 */
export function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return fix(x) - fix(y)
  }
  return a.length - b.length
}
// Surrogates (astral code points) sort above U+E000..U+FFFF in code point order.
const fix = (u: number): number => (u >= 0xe000 ? u - 0x800 : u >= 0xd800 ? u + 0x2000 : u)

/** Total order of scalars of one column: null first, then numbers / strings (code points) / false < true. */
export function compareScalars(a: CanonValue, b: CanonValue): number {
  if (a === b) return 0
  if (a === null) return -1
  if (b === null) return 1
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
  if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b)
  if (typeof a === 'boolean' && typeof b === 'boolean') return a ? 1 : -1
  throw new Error(`incomparable values ${JSON.stringify(a)} and ${JSON.stringify(b)}`)
}

export function matches(where: WhereNode, row: CanonRow): boolean {
  switch (where.kind) {
    case 'and':
      return where.items.every((w) => matches(w, row))
    case 'cmp': {
      const v = row[where.column] ?? null
      switch (where.op) {
        case 'eq':
          return compareNullable(v, where.value) === 0
        case 'ne':
          return compareNullable(v, where.value) !== 0
        case 'in':
          return where.value.some((x) => compareNullable(v, x) === 0)
        case 'gt':
          return v !== null && compareScalars(v, where.value) > 0
        case 'gte':
          return v !== null && compareScalars(v, where.value) >= 0
        case 'lt':
          return v !== null && compareScalars(v, where.value) < 0
        case 'lte':
          return v !== null && compareScalars(v, where.value) <= 0
        default:
          return assertNever(where, 'operator')
      }
    }
    default:
      return assertNever(where)
  }
}

function compareNullable(a: CanonValue, b: Scalar): number {
  if (a === null || b === null) return a === b ? 0 : 1
  return compareScalars(a, b)
}

export function compareRows(orderBy: readonly OrderItem[], a: CanonRow, b: CanonRow): number {
  for (const { column, direction } of orderBy) {
    const c = compareScalars(a[column] ?? null, b[column] ?? null)
    if (c !== 0) return direction === 'asc' ? c : -c
  }
  return 0
}

/** Does `row` come strictly after the keyset position `after` (values of the orderBy columns)? */
export function isAfter(orderBy: readonly OrderItem[], row: CanonRow, after: readonly Scalar[]): boolean {
  for (let i = 0; i < orderBy.length; i++) {
    const { column, direction } = orderBy[i]!
    const c = compareScalars(row[column] ?? null, after[i] ?? null)
    if (c !== 0) return direction === 'asc' ? c > 0 : c < 0
  }
  return false
}
