/**
 * The operation tree (Kysely's OperationNode idea): every repository call is first turned into a
 * plain, frozen, JSON-serialisable node, then compiled by a backend. Values are canonical:
 * datetime = epoch ms, bool = boolean, json = the JSON value. Backends switch over `kind` with an
 * exhaustive `never` check, so a new node kind does not compile until every backend handles it.
 */
import type { JsonValue } from './model.js'

/** A canonical column value. */
export type Scalar = null | number | string | boolean
export type CanonValue = Scalar | JsonValue
export type CanonRow = Readonly<Record<string, CanonValue>>

export type CmpOp = 'eq' | 'ne' | 'in' | 'gt' | 'gte' | 'lt' | 'lte'

/** eq/ne are null-safe (eq null = IS NULL); in matches null when the list holds null; ranges never match null. */
export type CmpNode =
  | { readonly kind: 'cmp'; readonly column: string; readonly op: Exclude<CmpOp, 'in'>; readonly value: Scalar }
  | { readonly kind: 'cmp'; readonly column: string; readonly op: 'in'; readonly value: readonly Scalar[] }

export type AndNode = { readonly kind: 'and'; readonly items: readonly WhereNode[] }
export type WhereNode = AndNode | CmpNode

export type Direction = 'asc' | 'desc'
/** ASC puts NULL first, DESC last (as SQLite). */
export type OrderItem = { readonly column: string; readonly direction: Direction }

export type SelectNode = {
  readonly kind: 'select'
  readonly table: string
  readonly where: WhereNode
  /** Always ends with the primary key, so the order is total (ties broken by primary key). */
  readonly orderBy: readonly OrderItem[]
  readonly limit: number | null
  readonly offset: number
  /** Keyset pagination: the orderBy values of the last row of the previous page. */
  readonly after: readonly Scalar[] | null
}

export type CountNode = { readonly kind: 'count'; readonly table: string; readonly where: WhereNode }

export type InsertNode = {
  readonly kind: 'insert'
  readonly table: string
  /** Rows with every column present; a missing generated primary key is null. */
  readonly rows: readonly CanonRow[]
  /** Home site of the new rows (null: the inserting site). */
  readonly home: string | null
}

export type UpdateNode = {
  readonly kind: 'update'
  readonly table: string
  readonly where: WhereNode
  readonly set: CanonRow
  /** Compare-and-swap condition (linearizable at the home site); null: a plain update. */
  readonly expect: WhereNode | null
}

export type DeleteNode = { readonly kind: 'delete'; readonly table: string; readonly where: WhereNode }

export type StatementNode = SelectNode | CountNode | InsertNode | UpdateNode | DeleteNode

export type ResultOf<N extends StatementNode> = N extends SelectNode
  ? CanonRow[]
  : N extends CountNode
    ? number
    : N extends InsertNode
      ? CanonRow[]
      : number

export function assertNever(x: never, what = 'node'): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(x)}`)
}

export function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === 'object' && !Object.isFrozen(x)) {
    Object.freeze(x)
    for (const v of Object.values(x as object)) deepFreeze(v)
  }
  return x
}

export const TRUE: AndNode = Object.freeze({ kind: 'and', items: Object.freeze([]) }) as AndNode

export function and(...items: WhereNode[]): WhereNode {
  const flat: WhereNode[] = []
  for (const it of items) {
    if (it.kind === 'and') flat.push(...it.items)
    else flat.push(it)
  }
  return flat.length === 1 ? flat[0]! : { kind: 'and', items: flat }
}
