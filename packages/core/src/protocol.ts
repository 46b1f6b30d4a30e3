import { assertKey, decodeUntrusted, encode } from './codec.js'
import { isSeq, isStreamId, type StreamId } from './context.js'
import { CONFIG_DIGEST_RE } from './config.js'
import { CausewayError } from './errors.js'

/** Replication protocol version carried in every hello; a peer with another version is refused. */
export const PROTOCOL_VERSION = 1

export type Vector = Array<[StreamId, number]>
/** A site's applied vector at one of its heartbeats (epochs only grow). */
export type Report = { site: string; epoch: number; av: Vector }

/**
 * Frames between two sites' engines (inside whatever transport framing the network uses).
 * - hello: first frame after a connection comes up: who I am, whether I accept/send writes, my
 *   received vector (the peer resumes sending from it) and the sites I receive writes from directly.
 * - writes: encoded WriteEntry bytes, in stream order per stream.
 * - ack: my received vector advanced durably (lets the sender trim its log and count pendingOut).
 * - nack: I dropped entries of `stream` after a gap; resend from `have` + 1.
 * - pull: send me back my own `stream` after `have` (I lost entries you hold: restored from a backup).
 * - beat: heartbeat with my received vector and direct upstreams (aliveness, relay pruning), and
 *   applied-vector reports of sites (mine and relayed ones, newest epoch wins) for causal stability.
 */
export type Frame =
  | { t: 'hello'; v: number; site: string; accepts: boolean; sends: boolean; rv: Vector; ups: string[]; cfg?: string }
  | { t: 'writes'; e: Uint8Array[] }
  | { t: 'ack'; rv: Vector }
  | { t: 'nack'; stream: StreamId; have: number }
  | { t: 'beat'; rv: Vector; ups: string[]; reports: Report[] }
  | { t: 'pull'; stream: StreamId; have: number }
  // Remote reads (remote-read.ts): read `keys` once `deps` are visible at the member (within waitMs).
  | { t: 'read'; id: number; keys: string[]; deps: Array<[StreamId, number]>; waitMs: number }
  // The answer: status 0 = states follow (key -> siblings as stored), 1 = unavailable, 2 = too large.
  | { t: 'read-res'; id: number; status: 0 | 1 | 2; states: Array<[string, WireSibling[]]> }

export const MAX_FRAME_ENTRIES = 4096
/** Keys in one remote read request. */
export const MAX_REMOTE_READ_KEYS = 1024
/** Longest wait a remote read may ask of a member. */
export const MAX_REMOTE_READ_WAIT_MS = 600_000
/** A stored sibling: [time, site, stream, seq, value or null (tombstone)] (conflict.ts stateToWire). */
export type WireSibling = [number, string, StreamId, number, Uint8Array | null]
const SITE_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/

export function encodeFrame(f: Frame): Uint8Array {
  switch (f.t) {
    case 'hello':
      return encode(f.cfg === undefined ? [0, f.v, f.site, f.accepts, f.sends, f.rv, f.ups] : [0, f.v, f.site, f.accepts, f.sends, f.rv, f.ups, f.cfg])
    case 'writes':
      return encode([1, f.e])
    case 'ack':
      return encode([2, f.rv])
    case 'nack':
      return encode([3, f.stream, f.have])
    case 'beat':
      return encode([4, f.rv, f.ups, f.reports.map((r) => [r.site, r.epoch, r.av])])
    case 'pull':
      return encode([5, f.stream, f.have])
    case 'read':
      return encode([10, f.id, f.keys, f.deps, f.waitMs])
    case 'read-res':
      return encode([11, f.id, f.status, f.states])
  }
}

function vector(x: unknown): Vector {
  if (!Array.isArray(x) || x.length > 100_000) throw bad('vector')
  const out: Vector = []
  for (const p of x) {
    if (!Array.isArray(p) || p.length !== 2 || !isStreamId(p[0]) || !(p[1] === 0 || isSeq(p[1]))) throw bad('vector entry')
    out.push([p[0], p[1]])
  }
  return out
}

function sites(x: unknown): string[] {
  if (!Array.isArray(x) || x.length > 10_000) throw bad('site list')
  for (const s of x) if (typeof s !== 'string' || !SITE_RE.test(s)) throw bad('site id')
  return x as string[]
}

function isReqId(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

function isKey(k: unknown): k is string {
  if (typeof k !== 'string') return false
  try {
    assertKey(k)
    return true
  } catch {
    return false
  }
}

function bad(what: string): CausewayError {
  return new CausewayError('INVALID_FRAME', `invalid frame: ${what}`)
}

/** Decode and validate a frame from a peer. Throws INVALID_FRAME; never returns a half-checked frame. */
export function decodeFrame(bytes: Uint8Array): Frame {
  const x = decodeUntrusted(bytes)
  if (!Array.isArray(x) || x.length === 0) throw bad('shape')
  switch (x[0]) {
    case 0: {
      if ((x.length !== 7 && x.length !== 8) || typeof x[1] !== 'number' || typeof x[2] !== 'string' || !SITE_RE.test(x[2]) || typeof x[3] !== 'boolean' || typeof x[4] !== 'boolean') throw bad('hello')
      // cfg: the configuration digest (config.ts); absent from older peers, which are then refused as incompatible.
      if (x.length === 8 && (typeof x[7] !== 'string' || !CONFIG_DIGEST_RE.test(x[7]))) throw bad('hello config digest')
      const hello: Frame = { t: 'hello', v: x[1], site: x[2], accepts: x[3], sends: x[4], rv: vector(x[5]), ups: sites(x[6]) }
      if (x.length === 8) hello.cfg = x[7] as string
      return hello
    }
    case 1: {
      if (x.length !== 2 || !Array.isArray(x[1]) || x[1].length > MAX_FRAME_ENTRIES) throw bad('writes')
      for (const e of x[1]) if (!(e instanceof Uint8Array)) throw bad('writes entry')
      return { t: 'writes', e: x[1] as Uint8Array[] }
    }
    case 2:
      if (x.length !== 2) throw bad('ack')
      return { t: 'ack', rv: vector(x[1]) }
    case 3:
      if (x.length !== 3 || !isStreamId(x[1]) || !(x[2] === 0 || isSeq(x[2]))) throw bad('nack')
      return { t: 'nack', stream: x[1], have: x[2] as number }
    case 4:
      if (x.length !== 4 || !Array.isArray(x[3]) || x[3].length > 10_000) throw bad('beat')
      return {
        t: 'beat',
        rv: vector(x[1]),
        ups: sites(x[2]),
        reports: (x[3] as unknown[]).map((r) => {
          if (!Array.isArray(r) || r.length !== 3 || typeof r[0] !== 'string' || !SITE_RE.test(r[0]) || !Number.isSafeInteger(r[1]) || (r[1] as number) < 0) throw bad('report')
          return { site: r[0], epoch: r[1] as number, av: vector(r[2]) }
        }),
      }
    case 5:
      if (x.length !== 3 || !isStreamId(x[1]) || !(x[2] === 0 || isSeq(x[2]))) throw bad('pull')
      return { t: 'pull', stream: x[1], have: x[2] as number }
    case 10: {
      if (x.length !== 5 || !isReqId(x[1]) || !Array.isArray(x[2]) || x[2].length === 0 || x[2].length > MAX_REMOTE_READ_KEYS) throw bad('read')
      for (const k of x[2]) if (!isKey(k)) throw bad('read key')
      if (!Number.isSafeInteger(x[4]) || (x[4] as number) < 0 || (x[4] as number) > MAX_REMOTE_READ_WAIT_MS) throw bad('read waitMs')
      const deps = vector(x[3])
      if (deps.some(([, q]) => q === 0)) throw bad('read dep')
      return { t: 'read', id: x[1], keys: x[2] as string[], deps, waitMs: x[4] as number }
    }
    case 11: {
      if (x.length !== 4 || !isReqId(x[1]) || (x[2] !== 0 && x[2] !== 1 && x[2] !== 2) || !Array.isArray(x[3]) || x[3].length > MAX_REMOTE_READ_KEYS) throw bad('read-res')
      if (x[2] !== 0 && x[3].length !== 0) throw bad('read-res states')
      const states: Array<[string, WireSibling[]]> = []
      for (const e of x[3] as unknown[]) {
        if (!Array.isArray(e) || e.length !== 2 || !isKey(e[0]) || !Array.isArray(e[1]) || e[1].length > 4096) throw bad('read-res state')
        const sibs: WireSibling[] = []
        for (const r of e[1] as unknown[]) {
          if (!Array.isArray(r) || r.length !== 5 || !Number.isSafeInteger(r[0]) || (r[0] as number) < 0 || typeof r[1] !== 'string' || !SITE_RE.test(r[1]) || !isStreamId(r[2]) || !isSeq(r[3])) throw bad('read-res sibling')
          if (r[4] !== null && !(r[4] instanceof Uint8Array)) throw bad('read-res value')
          if ((r[2] as string).slice(0, (r[2] as string).indexOf('/')) !== r[1]) throw bad('read-res sibling origin')
          sibs.push([r[0] as number, r[1], r[2] as StreamId, r[3] as number, r[4] === null ? null : new Uint8Array(r[4] as Uint8Array)])
        }
        states.push([e[0] as string, sibs])
      }
      return { t: 'read-res', id: x[1], status: x[2], states }
    }
    default:
      throw bad('type')
  }
}
