import { assertKey, decodeUntrusted, decodeValue, encode, MAX_KEY_BYTES } from './codec.js'
import { isSeq, isStreamId, isVersion, MAX_VERSIONS_PER_KEY, type Dot, type StreamId } from './context.js'
import { CausewayError } from './errors.js'
import { SITE_ID_RE } from './ids.js'
import type { Version } from './types.js'

export const MAX_OPS_PER_WRITE = 1024
export const MAX_DEPS = 8192
/** Members listed in a scope stub (scopes.ts MAX_SCOPE_MEMBERS). */
export const MAX_HOLDERS = 10_000

export interface WriteEntryOp {
  key: string
  /** Encoded value; undefined = delete (tombstone). */
  value: Uint8Array | undefined
  supersedes: Version[]
}

/**
 * One replicated write: the unit of the replication log. A `put` has one op; an atomic multi-key
 * write has several, sharing one version. Stored and relayed as the exact bytes the origin encoded.
 */
export interface WriteEntry {
  stream: StreamId
  seq: number
  time: number
  site: string
  deps: Dot[]
  ops: WriteEntryOp[]
  /**
   * An expired stub: the write outlived its keyspace's `ttl` while queued, so its effect was dropped
   * on the way (ops are empty); it keeps the stream gapless and satisfies later dependencies.
   */
  expired?: boolean
  /**
   * A scope stub (scopes.ts, sender.ts): the write's keys are in a scope this copy's holder is not a
   * member of, so it carries no ops; these sites (the scope's members) hold it in full. A member
   * that receives a stub (through a non-member relay) must not take it in place of the write.
   */
  holders?: string[]
}

export function encodeEntry(e: WriteEntry): Uint8Array {
  if (e.holders !== undefined) return encode([3, e.stream, e.seq, e.time, e.site, e.deps, [], e.holders])
  const wire = [
    e.expired ? 2 : 1,
    e.stream,
    e.seq,
    e.time,
    e.site,
    e.deps,
    e.ops.map((o) => [o.key, o.value ?? null, o.supersedes.map((v) => [v.time, v.site])]),
  ]
  return encode(wire)
}

/**
 * Decode and fully validate an entry from storage or the network, op values included (each must be
 * exactly one encoded Value, so nothing untyped surfaces when the site reads it later).
 * Throws INVALID_FRAME.
 */
export function decodeEntry(bytes: Uint8Array, maxValueBytes: number): WriteEntry {
  const bad = (why: string): never => {
    throw new CausewayError('INVALID_FRAME', `invalid write entry: ${why}`)
  }
  const w = decodeUntrusted(bytes)
  if (!Array.isArray(w)) return bad('shape')
  let holders: string[] | undefined
  if (w[0] === 3 && w.length === 8) {
    const h = w[7] as unknown
    if (!Array.isArray(h) || h.length > MAX_HOLDERS) return bad('holders')
    for (const x of h) if (typeof x !== 'string' || !SITE_ID_RE.test(x)) return bad('holder')
    holders = h as string[]
  } else if (w.length !== 7 || (w[0] !== 1 && w[0] !== 2)) return bad('shape')
  const expired = w[0] !== 1
  const [, stream, seq, time, site, deps, ops] = w as unknown[]
  if (!isStreamId(stream)) return bad('stream')
  if (!isSeq(seq)) return bad('seq')
  if (!isVersion({ time, site })) return bad('version')
  if (stream.slice(0, stream.indexOf('/')) !== site) return bad('stream origin differs from version site')
  if (!Array.isArray(deps) || deps.length > MAX_DEPS) return bad('deps')
  const outDeps: Dot[] = []
  for (const d of deps) {
    if (!Array.isArray(d) || d.length !== 2 || !isStreamId(d[0]) || !isSeq(d[1])) return bad('dep')
    outDeps.push([d[0], d[1]])
  }
  if (!Array.isArray(ops) || (expired ? ops.length !== 0 : ops.length === 0) || ops.length > MAX_OPS_PER_WRITE) return bad('ops')
  const outOps: WriteEntryOp[] = []
  const seen = new Set<string>()
  for (const o of ops) {
    if (!Array.isArray(o) || o.length !== 3) return bad('op')
    const [key, value, sup] = o as unknown[]
    if (typeof key !== 'string' || key.length > MAX_KEY_BYTES) return bad('op key')
    try {
      assertKey(key)
    } catch {
      return bad('op key')
    }
    if (seen.has(key)) return bad('duplicate key')
    seen.add(key)
    if (value !== null && !(value instanceof Uint8Array)) return bad('op value')
    if (value instanceof Uint8Array) {
      if (value.length > maxValueBytes) return bad('op value too large')
      try {
        decodeValue(value)
      } catch (e) {
        return bad(`op value: ${(e as Error).message}`)
      }
    }
    if (!Array.isArray(sup) || sup.length > MAX_VERSIONS_PER_KEY) return bad('supersedes')
    const vs: Version[] = []
    for (const v of sup) {
      if (!Array.isArray(v)) return bad('supersedes version')
      const ver = { time: v[0], site: v[1] }
      if (!isVersion(ver)) return bad('supersedes version')
      vs.push(ver)
    }
    outOps.push({ key, value: value === null ? undefined : new Uint8Array(value as Uint8Array), supersedes: vs })
  }
  const out: WriteEntry = { stream, seq, time: time as number, site: site as string, deps: outDeps, ops: outOps }
  if (holders !== undefined) out.holders = [...holders]
  else if (expired) out.expired = true
  return out
}
