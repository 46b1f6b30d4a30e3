import { isUtf8 } from 'node:buffer'
import { CausewayError } from './errors.js'

/**
 * A MessagePack reader for hostile bytes, limited to what Causeway encodes: nil, booleans, ints,
 * floats, str, bin, array, map with string keys, and the timestamp extension (-1, for Dates).
 * Every other extension (msgpackr's Error, RegExp, Set, Map, BigInt, typed arrays, records,
 * structured clone...) and the never-used byte 0xc1 are refused.
 *
 * Why not msgpackr's unpack: it recurses on attacker-chosen depth (stack overflow before any depth
 * check), builds error messages by JSON.stringify-ing the decoded tree (hundreds of ms on a big frame
 * with one trailing byte), runs its extensions on hostile data and renames `__proto__` keys.
 * Here recursion is bounded by `maxDepth` before descending, trailing bytes are an O(1) check,
 * lengths are checked against the bytes left before anything is allocated, and every failure is
 * one CausewayError('INVALID_FRAME') thrown by a check (no exception is caught on the way).
 */

export interface ReadOptions {
  /** Containers (and bin/ext) deeper than this are refused; root = depth 0 (as assertValue counts). */
  maxDepth: number
  /** Values: copy bins into fresh Uint8Arrays (the caller owns them); refuse NaN/±Infinity. */
  value: boolean
  /** Refuse invalid UTF-8 in strings instead of replacing it with U+FFFD. */
  strictUtf8: boolean
}

let src: Uint8Array = new Uint8Array(0)
let pos = 0
let end = 0
let opts: ReadOptions = { maxDepth: 0, value: false, strictUtf8: true }

const f64 = new Float64Array(1)
const f64b = new Uint8Array(f64.buffer)
const f32 = new Float32Array(1)
const f32b = new Uint8Array(f32.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const utf8 = new TextDecoder('utf-8')
const fromCharCode = String.fromCharCode

function fail(why: string): never {
  throw new CausewayError('INVALID_FRAME', `invalid MessagePack: ${why}`)
}

/** Decode exactly one MessagePack item spanning all of `bytes`. Throws INVALID_FRAME. */
export function readMsgpack(bytes: Uint8Array, options: ReadOptions): unknown {
  if (bytes.length === 0) fail('empty')
  src = bytes
  pos = 0
  end = bytes.length
  opts = options
  try {
    const v = read(0)
    if (pos !== end) fail(`${end - pos} trailing bytes`)
    return v
  } finally {
    src = EMPTY // do not keep the caller's buffer alive
  }
}
const EMPTY = new Uint8Array(0)

function need(n: number): void {
  if (n > end - pos) fail('truncated')
}

function u8(): number {
  need(1)
  return src[pos++]!
}
function u16(): number {
  need(2)
  const v = (src[pos]! << 8) | src[pos + 1]!
  pos += 2
  return v
}
function u32(): number {
  need(4)
  const v = src[pos]! * 0x1000000 + ((src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!)
  pos += 4
  return v
}

function float(n: 4 | 8): number {
  need(n)
  const b = n === 8 ? f64b : f32b
  if (littleEndian) for (let i = 0; i < n; i++) b[n - 1 - i] = src[pos + i]!
  else for (let i = 0; i < n; i++) b[i] = src[pos + i]!
  pos += n
  const v = n === 8 ? f64[0]! : f32[0]!
  if (opts.value && !Number.isFinite(v)) fail('not a finite number')
  return v
}

function read(depth: number): unknown {
  const t = u8()
  if (t < 0x80) return t
  if (t < 0x90) return map(t & 0x0f, depth)
  if (t < 0xa0) return array(t & 0x0f, depth)
  if (t < 0xc0) return str(t & 0x1f)
  if (t >= 0xe0) return t - 0x100
  switch (t) {
    case 0xc0:
      return null
    case 0xc2:
      return false
    case 0xc3:
      return true
    case 0xc4:
      return bin(u8(), depth)
    case 0xc5:
      return bin(u16(), depth)
    case 0xc6:
      return bin(u32(), depth)
    case 0xc7:
      return ext(u8(), depth)
    case 0xc8:
      return ext(u16(), depth)
    case 0xc9:
      return ext(u32(), depth)
    case 0xca:
      return float(4)
    case 0xcb:
      return float(8)
    case 0xcc:
      return u8()
    case 0xcd:
      return u16()
    case 0xce:
      return u32()
    case 0xcf: {
      const hi = u32()
      return hi * 0x100000000 + u32()
    }
    case 0xd0: {
      const v = u8()
      return v < 0x80 ? v : v - 0x100
    }
    case 0xd1: {
      const v = u16()
      return v < 0x8000 ? v : v - 0x10000
    }
    case 0xd2: {
      const v = u32()
      return v < 0x80000000 ? v : v - 0x100000000
    }
    case 0xd3: {
      const hi = u32() | 0
      return hi * 0x100000000 + u32()
    }
    case 0xd4:
      return ext(1, depth)
    case 0xd5:
      return ext(2, depth)
    case 0xd6:
      return ext(4, depth)
    case 0xd7:
      return ext(8, depth)
    case 0xd8:
      return ext(16, depth)
    case 0xd9:
      return str(u8())
    case 0xda:
      return str(u16())
    case 0xdb:
      return str(u32())
    case 0xdc:
      return array(u16(), depth)
    case 0xdd:
      return array(u32(), depth)
    case 0xde:
      return map(u16(), depth)
    case 0xdf:
      return map(u32(), depth)
    default:
      return fail(`type byte 0x${t.toString(16)}`) // 0xc1: never used
  }
}

function array(n: number, depth: number): unknown[] {
  if (depth > opts.maxDepth) fail(`nested deeper than ${opts.maxDepth}`)
  if (n > end - pos) fail('array length over the bytes left') // every item takes at least one byte
  const a = new Array<unknown>(n)
  for (let i = 0; i < n; i++) a[i] = read(depth + 1)
  return a
}

function map(n: number, depth: number): Record<string, unknown> {
  if (depth > opts.maxDepth) fail(`nested deeper than ${opts.maxDepth}`)
  if (n > (end - pos) / 2) fail('map length over the bytes left')
  const o: Record<string, unknown> = {}
  for (let i = 0; i < n; i++) {
    const k = key()
    const v = read(depth + 1)
    if (Object.hasOwn(o, k)) fail('duplicate map key')
    // Keep `__proto__` as the own data property it was written as (assigning would set the prototype).
    if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true })
    else o[k] = v
  }
  return o
}

function key(): string {
  const t = u8()
  if (t >= 0xa0 && t < 0xb1) return shortKey(t & 0x1f)
  if (t >= 0xa0 && t < 0xc0) return str(t & 0x1f)
  if (t === 0xd9) return str(u8())
  if (t === 0xda) return str(u16())
  if (t === 0xdb) return str(u32())
  return fail('map key is not a string')
}

function str(n: number): string {
  need(n)
  const start = pos
  pos += n
  if (n === 0) return ''
  if (n <= 64) return shortStr(start, pos)
  const view = src.subarray(start, pos)
  if (opts.strictUtf8 && !isUtf8(view)) fail('string is not valid UTF-8') // native check, no exception
  return utf8.decode(view)
}

// Map keys repeat (a row's column names, a document's field names): short ASCII keys are looked up
// by their bytes in a small cache instead of being decoded again (as msgpackr does).
const KEY_SLOTS = 4096
const keyBytes: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(KEY_SLOTS)
const keyStrings: string[] = new Array<string>(KEY_SLOTS)

function shortKey(n: number): string {
  need(n)
  const d = src
  const p = pos
  let h = n
  for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + d[p + i]!) | 0
  const slot = h & (KEY_SLOTS - 1)
  const cached = keyBytes[slot]
  if (cached !== undefined && cached.length === n) {
    let i = 0
    while (i < n && cached[i] === d[p + i]) i++
    if (i === n) {
      pos += n
      return keyStrings[slot]!
    }
  }
  let ascii = true
  for (let i = 0; i < n; i++) if (d[p + i]! >= 0x80) ascii = false
  const k = str(n)
  if (ascii) {
    // Only valid (ASCII) keys are cached, so strict and lenient reads never share a replaced string.
    const copy = new Uint8Array(n)
    for (let i = 0; i < n; i++) copy[i] = d[p + i]!
    keyBytes[slot] = copy
    keyStrings[slot] = k
  }
  return k
}

const units: number[] = []
/**
 * Short strings (keys, most small values) decode in JS: a decoder call costs more than the loop.
 * Strict mode refuses what WHATWG UTF-8 refuses (overlongs, surrogates, > U+10FFFF, truncation);
 * lenient mode puts one U+FFFD per bad byte, as msgpackr's JS reader did.
 */
function shortStr(start: number, stop: number): string {
  const d = src
  units.length = 0
  let i = start
  while (i < stop) {
    const b1 = d[i++]!
    if (b1 < 0x80) {
      units.push(b1)
      continue
    }
    if (b1 >= 0xc2 && b1 < 0xe0) {
      const b2 = i < stop ? d[i]! : 0
      if ((b2 & 0xc0) === 0x80) {
        i++
        units.push(((b1 & 0x1f) << 6) | (b2 & 0x3f))
        continue
      }
    } else if (b1 >= 0xe0 && b1 < 0xf0) {
      const b2 = i < stop ? d[i]! : 0
      const b3 = i + 1 < stop ? d[i + 1]! : 0
      const lo = b1 === 0xe0 ? 0xa0 : 0x80
      const hi = b1 === 0xed ? 0x9f : 0xbf
      if (b2 >= lo && b2 <= hi && (b3 & 0xc0) === 0x80) {
        i += 2
        units.push(((b1 & 0x0f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f))
        continue
      }
    } else if (b1 >= 0xf0 && b1 <= 0xf4) {
      const b2 = i < stop ? d[i]! : 0
      const b3 = i + 1 < stop ? d[i + 1]! : 0
      const b4 = i + 2 < stop ? d[i + 2]! : 0
      const lo = b1 === 0xf0 ? 0x90 : 0x80
      const hi = b1 === 0xf4 ? 0x8f : 0xbf
      if (b2 >= lo && b2 <= hi && (b3 & 0xc0) === 0x80 && (b4 & 0xc0) === 0x80) {
        i += 3
        const cp = (((b1 & 0x07) << 18) | ((b2 & 0x3f) << 12) | ((b3 & 0x3f) << 6) | (b4 & 0x3f)) - 0x10000
        units.push(0xd800 | (cp >>> 10), 0xdc00 | (cp & 0x3ff))
        continue
      }
    }
    if (opts.strictUtf8) fail('string is not valid UTF-8')
    units.push(0xfffd)
  }
  return fromCharCode.apply(null, units)
}

function bin(n: number, depth: number): Uint8Array {
  if (depth > opts.maxDepth) fail(`nested deeper than ${opts.maxDepth}`)
  need(n)
  const start = pos
  pos += n
  // Values get a copy they own; structural reads get a view (the caller copies what it keeps).
  // (ArrayBuffer.slice copies; Buffer.prototype.slice would not.)
  const at = src.byteOffset + start
  return opts.value ? new Uint8Array(src.buffer.slice(at, at + n)) : new Uint8Array(src.buffer, at, n)
}

/** Only the timestamp extension (-1) is part of the model; it decodes as msgpackr encodes Dates. */
function ext(n: number, depth: number): Date {
  if (depth > opts.maxDepth) fail(`nested deeper than ${opts.maxDepth}`)
  const type = u8()
  if (type !== 0xff) fail(`extension type ${type > 127 ? type - 256 : type}`)
  need(n)
  const d = src
  const p = pos
  pos += n
  let ms: number
  if (n === 4) ms = (d[p]! * 0x1000000 + (d[p + 1]! << 16) + (d[p + 2]! << 8) + d[p + 3]!) * 1000
  else if (n === 8)
    ms =
      ((d[p]! << 22) + (d[p + 1]! << 14) + (d[p + 2]! << 6) + (d[p + 3]! >> 2)) / 1000000 +
      ((d[p + 3]! & 0x3) * 0x100000000 + d[p + 4]! * 0x1000000 + (d[p + 5]! << 16) + (d[p + 6]! << 8) + d[p + 7]!) * 1000
  else if (n === 12) {
    const nanos = d[p]! * 0x1000000 + ((d[p + 1]! << 16) | (d[p + 2]! << 8) | d[p + 3]!)
    const hi = ((d[p + 4]! << 24) | (d[p + 5]! << 16) | (d[p + 6]! << 8) | d[p + 7]!) | 0
    const lo = d[p + 8]! * 0x1000000 + ((d[p + 9]! << 16) | (d[p + 10]! << 8) | d[p + 11]!)
    ms = nanos / 1000000 + (hi * 0x100000000 + lo) * 1000
  } else return fail('timestamp length')
  const date = new Date(ms)
  if (Number.isNaN(date.getTime())) fail('invalid timestamp')
  return date
}
