import { Packr } from 'msgpackr'
import { CausewayError } from './errors.js'
import { readMsgpack, type ReadOptions } from './msgpack-reader.js'
import type { Value } from './types.js'

// One packer for values and frames (encoding only). Records and structured clone are off, so the
// bytes are plain MessagePack. Decoding never goes through msgpackr: msgpack-reader.ts reads only
// the Value model and the protocol's arrays, with depth, length and trailing-byte checks.
const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  encodeUndefinedAsNil: false,
  bundleStrings: false,
})

export const MAX_VALUE_DEPTH = 64
/** Frames, entries, tokens and stored records are shallow arrays: anything deeper is hostile. */
export const MAX_STRUCTURE_DEPTH = 8

const STRUCTURE: ReadOptions = { maxDepth: MAX_STRUCTURE_DEPTH, value: false, strictUtf8: true }
const VALUE: ReadOptions = { maxDepth: MAX_VALUE_DEPTH, value: true, strictUtf8: true }
// Stored values passed VALUE on the way in; strings written before lone surrogates were refused
// may hold invalid UTF-8, which reads as U+FFFD rather than making the key unreadable.
const STORED: ReadOptions = { maxDepth: MAX_VALUE_DEPTH, value: true, strictUtf8: false }

/** Encode to a fresh buffer the caller owns (msgpackr reuses its internal buffer). */
export function encode(x: unknown): Uint8Array {
  return Uint8Array.prototype.slice.call(packr.pack(x))
}

/**
 * Decode untrusted protocol bytes (frames, entries, tokens, stored records): at most
 * MAX_STRUCTURE_DEPTH deep, bins are views into `bytes`. Throws CausewayError('INVALID_FRAME').
 */
export function decodeUntrusted(bytes: Uint8Array): unknown {
  return readMsgpack(bytes, STRUCTURE)
}

function isPlainObject(x: object): boolean {
  const proto = Object.getPrototypeOf(x)
  return proto === Object.prototype || proto === null
}

/**
 * Throws INVALID_VALUE unless `v` is a Value: null, boolean, finite number, string, Uint8Array,
 * valid Date, array (no holes) or plain object of Values, acyclic, at most MAX_VALUE_DEPTH deep.
 */
export function assertValue(v: unknown, path = 'value', seen: Set<object> = new Set(), depth = 0): asserts v is Value {
  if (v === null) return
  switch (typeof v) {
    case 'boolean':
      return
    case 'string':
      // A lone surrogate has no UTF-8 form: it would come back as U+FFFD, i.e. altered.
      if (!v.isWellFormed()) throw new CausewayError('INVALID_VALUE', `${path} is a string with a lone surrogate`)
      return
    case 'number':
      if (!Number.isFinite(v)) throw new CausewayError('INVALID_VALUE', `${path} is not a finite number`)
      return
    case 'object':
      break
    default:
      throw new CausewayError('INVALID_VALUE', `${path} has unsupported type ${typeof v}`)
  }
  const o = v as object
  if (depth > MAX_VALUE_DEPTH) throw new CausewayError('INVALID_VALUE', `${path} is nested deeper than ${MAX_VALUE_DEPTH}`)
  if (o instanceof Uint8Array) {
    if (o.constructor !== Uint8Array && !Buffer.isBuffer(o)) throw new CausewayError('INVALID_VALUE', `${path} is a ${o.constructor.name}`)
    return
  }
  if (o instanceof Date) {
    if (Number.isNaN(o.getTime())) throw new CausewayError('INVALID_VALUE', `${path} is an invalid Date`)
    return
  }
  if (seen.has(o)) throw new CausewayError('INVALID_VALUE', `${path} contains a cycle`)
  seen.add(o)
  if (Array.isArray(o)) {
    for (let i = 0; i < o.length; i++) {
      if (!(i in o)) throw new CausewayError('INVALID_VALUE', `${path}[${i}] is a hole`)
      assertValue(o[i], `${path}[${i}]`, seen, depth + 1)
    }
  } else {
    if (!isPlainObject(o)) throw new CausewayError('INVALID_VALUE', `${path} is a class instance (${o.constructor?.name ?? 'unknown'})`)
    if (Object.getOwnPropertySymbols(o).length > 0) throw new CausewayError('INVALID_VALUE', `${path} has symbol keys`)
    for (const k of Object.keys(o)) {
      if (!k.isWellFormed()) throw new CausewayError('INVALID_VALUE', `${path} has a key with a lone surrogate`)
      assertValue((o as Record<string, unknown>)[k], `${path}.${k}`, seen, depth + 1)
    }
  }
  seen.delete(o)
}

export function encodeValue(v: unknown, maxValueBytes: number): Uint8Array {
  assertValue(v)
  const bytes = packr.pack(v)
  if (bytes.length > maxValueBytes) {
    throw new CausewayError('VALUE_TOO_LARGE', `encoded value is ${bytes.length} bytes, over maxValueBytes=${maxValueBytes}`)
  }
  // Packr reuses its buffer: copy so the caller owns the bytes.
  return Uint8Array.prototype.slice.call(bytes)
}

/**
 * Decode a value this site stored. Every stored value was checked when it entered the site (a local
 * put validates before encoding; a replicated write is checked with decodeValue on receipt); the
 * reader still builds only Values, so even a corrupt record cannot surface anything else.
 */
export function decodeStored(bytes: Uint8Array): Value {
  return readMsgpack(bytes, STORED) as Value
}

/**
 * Decode a value that came from the network; throws INVALID_FRAME unless the bytes are exactly one
 * encoded Value. The reader builds only the Value model (finite numbers, valid UTF-8 and Dates,
 * plain objects with string keys, `__proto__` kept as an own key, at most MAX_VALUE_DEPTH deep),
 * so no validation walk follows.
 */
export function decodeValue(bytes: Uint8Array): Value {
  return readMsgpack(bytes, VALUE) as Value
}

const utf8 = new TextEncoder()
export const MAX_KEY_BYTES = 1024

export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new CausewayError('INVALID_KEY', `key must be a string, got ${key === null ? 'null' : typeof key}`)
  if (key.length === 0) throw new CausewayError('INVALID_KEY', 'key must not be empty')
  if (!key.isWellFormed()) throw new CausewayError('INVALID_KEY', 'key contains a lone surrogate')
  if (key.length > MAX_KEY_BYTES / 3 && utf8.encode(key).length > MAX_KEY_BYTES) {
    throw new CausewayError('INVALID_KEY', `key is over ${MAX_KEY_BYTES} UTF-8 bytes`)
  }
  if (key.length > MAX_KEY_BYTES) throw new CausewayError('INVALID_KEY', `key is over ${MAX_KEY_BYTES} UTF-8 bytes`)
}

/** FNV-1a 32-bit over UTF-16 code units: a stable key → shard mapping, independent of the platform. */
export function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
