/**
 * Order-preserving encoding of column values into index terms (compared by UTF-16 code units).
 *
 *   null        -> '0'                (sorts before every value: ASC NULLS FIRST, like SQLite)
 *   value       -> '1' + payload
 *   number      -> 16 hex digits of the IEEE-754 bits, sign-flipped so that the order of the
 *                  strings is the numeric order (negatives, -0 = 0, fractions included)
 *   boolean     -> '0' | '1'
 *   string      -> the string with U+0000..U+0002 escaped as U+0002 + (c + 2), so every payload
 *                  char is >= U+0002 and the separator U+0001 sorts below all of them
 *
 * A compound term is the parts joined by SEP (U+0001): a shorter string sorts first because SEP is
 * smaller than any payload char. Terms never contain U+0000.
 */
import type { CanonValue, Scalar } from './nodes.js'

export const SEP = '\u0001'
/** Smallest char above SEP: `prefix + SEP` ... `prefix + AFTER_SEP` brackets all continuations. */
export const AFTER_SEP = '\u0002'

const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export function encodeNumber(n: number): string {
  f64[0] = n === 0 ? 0 : n // -0 -> 0
  let hi = LITTLE ? u32[1]! : u32[0]!
  let lo = LITTLE ? u32[0]! : u32[1]!
  if (hi & 0x80000000) {
    hi = ~hi >>> 0
    lo = ~lo >>> 0
  } else {
    hi = (hi | 0x80000000) >>> 0
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0')
}

export function escapeString(s: string): string {
  // Fast path: nothing to escape.
  if (!/[\u0000-\u0002]/.test(s)) return s
  let out = ''
  for (const ch of s) {
    const c = ch.charCodeAt(0)
    out += c <= 2 ? '\u0002' + String.fromCharCode(c + 2) : ch
  }
  return out
}

export function encodeScalar(v: CanonValue): string {
  if (v === null || v === undefined) return '0'
  switch (typeof v) {
    case 'number':
      return '1' + encodeNumber(v)
    case 'boolean':
      return v ? '11' : '10'
    case 'string':
      return '1' + escapeString(v)
    default:
      throw new Error(`cannot index a ${typeof v}`)
  }
}

export function encodeTerm(values: readonly CanonValue[]): string {
  return values.map(encodeScalar).join(SEP)
}

/** The key of a row: `<table>/<pk>`, order-preserving in the primary key. */
export function rowKey(table: string, pk: Scalar): string {
  if (typeof pk === 'number') return `${table}/${encodeNumber(pk)}`
  if (typeof pk === 'string') return `${table}/${pk}`
  throw new Error(`bad primary key ${String(pk)}`)
}
