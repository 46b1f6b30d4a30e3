import { CausewayError } from './errors.js'
import { assertKey, decodeUntrusted, encode } from './codec.js'
import type { Version } from './types.js'

/** A write's identity in the replication streams: stream `<origin>/<originShard>` and sequence number. */
export type StreamId = string
export type Dot = [stream: StreamId, seq: number]

/** Sessions remember the versions they observed of at most this many keys (for return-all supersession). */
export const MAX_OBSERVED_KEYS = 256
/** Versions remembered per key (a token's observation, an entry's supersedes list). */
export const MAX_VERSIONS_PER_KEY = 4096
/** Dependencies (streams) a token may carry: as many as an entry may carry. */
export const MAX_TOKEN_DEPS = 8192

const STREAM_RE = /^[a-z0-9][a-z0-9_-]{0,62}\/\d{1,2}$/

export function isStreamId(s: unknown): s is StreamId {
  return typeof s === 'string' && STREAM_RE.test(s)
}

export function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0
}

export function isVersion(v: unknown): v is Version {
  if (typeof v !== 'object' || v === null) return false
  const o = v as Record<string, unknown>
  return typeof o.time === 'number' && Number.isSafeInteger(o.time) && o.time >= 0 && typeof o.site === 'string' && o.site.length > 0 && o.site.length <= 63
}

/**
 * A session's causal context (COPS): the nearest dependencies as a per-stream vector (streams are
 * applied in order, so one seq per stream summarises everything before it), the highest Lamport time
 * seen, and the versions observed per key (a put supersedes exactly those: return-all semantics).
 */
export class CausalContext {
  deps = new Map<StreamId, number>()
  maxTime = 0
  observed = new Map<string, Version[]>()

  addDep(stream: StreamId, seq: number): void {
    const cur = this.deps.get(stream)
    if (cur === undefined || cur < seq) this.deps.set(stream, seq)
  }

  /** `track`: remember the versions for supersession (only non-LWW keys need it). */
  observe(key: string, versions: Version[], dots: Dot[], track = true): void {
    for (const [s, q] of dots) this.addDep(s, q)
    for (const v of versions) if (v.time > this.maxTime) this.maxTime = v.time
    if (!track) {
      if (this.observed.size > 0) this.observed.delete(key)
      return
    }
    // Re-insert to keep Map order = recency; evict the oldest beyond the bound.
    this.observed.delete(key)
    this.observed.set(key, versions)
    if (this.observed.size > MAX_OBSERVED_KEYS) {
      const oldest = this.observed.keys().next().value as string
      this.observed.delete(oldest)
    }
  }

  /** After a put: the new write is the single nearest dependency. */
  afterWrite(dot: Dot, keys: string[], version: Version, track: (key: string) => boolean = () => true): void {
    this.deps.clear()
    this.deps.set(dot[0], dot[1])
    if (version.time > this.maxTime) this.maxTime = version.time
    for (const k of keys) this.observe(k, [version], [], track(k))
  }

  depList(): Dot[] {
    return [...this.deps]
  }

  encode(): string {
    const payload = [1, [...this.deps], this.maxTime, [...this.observed].map(([k, vs]) => [k, vs.map((v) => [v.time, v.site])])]
    const body = Buffer.from(encode(payload))
    const sum = crc32(body)
    const out = Buffer.alloc(body.length + 4)
    out.writeUInt32BE(sum, 0)
    body.copy(out, 4)
    return 'cw1.' + out.toString('base64url')
  }

  static decode(token: unknown): CausalContext {
    const bad = (why: string): never => {
      throw new CausewayError('INVALID_CONTEXT', `context token does not decode: ${why}`)
    }
    if (typeof token !== 'string' || !token.startsWith('cw1.')) return bad('not a Causeway context token')
    if (token.length > 1_000_000) return bad('too long')
    const raw = Buffer.from(token.slice(4), 'base64url')
    if (raw.length < 5) return bad('too short')
    const body = raw.subarray(4)
    if (raw.readUInt32BE(0) !== crc32(body)) return bad('checksum mismatch')
    let p: unknown
    try {
      p = decodeUntrusted(body)
    } catch {
      return bad('malformed')
    }
    // Tokens come from clients: every list is bounded and every key checked like a request's key.
    if (!Array.isArray(p) || p.length !== 4 || p[0] !== 1 || !Array.isArray(p[1]) || typeof p[2] !== 'number' || !Array.isArray(p[3])) return bad('malformed')
    if (p[1].length > MAX_TOKEN_DEPS) return bad(`more than ${MAX_TOKEN_DEPS} dependencies`)
    if (p[3].length > MAX_OBSERVED_KEYS) return bad(`more than ${MAX_OBSERVED_KEYS} observed keys`)
    const ctx = new CausalContext()
    for (const d of p[1] as unknown[]) {
      if (!Array.isArray(d) || d.length !== 2 || !isStreamId(d[0]) || !isSeq(d[1])) return bad('malformed dependency')
      ctx.addDep(d[0], d[1])
    }
    if (!Number.isSafeInteger(p[2]) || (p[2] as number) < 0) return bad('malformed time')
    ctx.maxTime = p[2] as number
    for (const o of p[3] as unknown[]) {
      if (!Array.isArray(o) || o.length !== 2 || !Array.isArray(o[1])) return bad('malformed observation')
      try {
        assertKey(o[0])
      } catch {
        return bad('observed key is not a valid key')
      }
      if (o[1].length > MAX_VERSIONS_PER_KEY) return bad(`more than ${MAX_VERSIONS_PER_KEY} versions of one key`)
      if (ctx.observed.has(o[0])) return bad('key observed twice')
      const vs: Version[] = []
      for (const v of o[1] as unknown[]) {
        if (!Array.isArray(v) || v.length !== 2) return bad('malformed version')
        const ver = { time: v[0], site: v[1] }
        if (!isVersion(ver)) return bad('malformed version')
        vs.push(ver)
      }
      ctx.observed.set(o[0], vs)
    }
    return ctx
  }
}

/**
 * A token for the union of the causal pasts of `tokens` (each from `session.context()`): a session
 * continued from it depends on everything any of them had seen or written. Key observations are
 * dropped: a session started from a join supersedes only what it reads itself. Throws INVALID_CONTEXT.
 */
export function joinContexts(tokens: Iterable<string>): string {
  const out = new CausalContext()
  for (const t of tokens) {
    const c = CausalContext.decode(t)
    for (const [s, q] of c.deps) out.addDep(s, q)
    if (c.maxTime > out.maxTime) out.maxTime = c.maxTime
  }
  return out.encode()
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
