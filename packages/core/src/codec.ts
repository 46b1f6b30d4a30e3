import { Packr } from 'msgpackr'
import { CausewayError } from './errors.js'
import type { Value } from './types.js'

// One packer for values and frames. Records and structured clone are off, so the bytes are plain
// MessagePack; decoding is hardened by validating the decoded tree (hostile bytes can still name
// msgpackr's built-in extensions such as Set, Error or BigInt, which the walk rejects).
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

/** Encode to a fresh buffer the caller owns (msgpackr reuses its internal buffer). */
export function encode(x: unknown): Uint8Array {
  return Uint8Array.prototype.slice.call(packr.pack(x))
}

/** Decode untrusted bytes. Throws CausewayError('INVALID_FRAME') on anything malformed. */
export function decodeUntrusted(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes)
  } catch (e) {
    throw new CausewayError('INVALID_FRAME', 'undecodable bytes', { cause: e })
  }
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
    case 'string':
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
    for (const k of Object.keys(o)) assertValue((o as Record<string, unknown>)[k], `${path}.${k}`, seen, depth + 1)
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

/** Buffers become plain Uint8Arrays so values round-trip exactly. */
function normalize(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v)
  if (v instanceof Date) return v
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = normalize(v[i])
    return v
  }
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) o[k] = normalize(o[k])
  return o
}

/**
 * Decode a value this site stored. Every stored value was checked when it entered the site (a local
 * put validates before encoding; a replicated write is checked with decodeValue on receipt), so
 * reads skip the validation walk.
 */
export function decodeStored(bytes: Uint8Array): Value {
  return normalize(decodeUntrusted(bytes)) as Value
}

/** Decode a value that came from storage or the network; throws INVALID_FRAME if it is not a Value. */
export function decodeValue(bytes: Uint8Array): Value {
  const v = normalize(decodeUntrusted(bytes))
  try {
    assertValue(v)
  } catch (e) {
    throw new CausewayError('INVALID_FRAME', 'decoded bytes are not a Value', { cause: e })
  }
  return v
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
