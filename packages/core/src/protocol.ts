import { assertKey, decodeUntrusted, encode, MAX_KEY_BYTES } from './codec.js'
import { isSeq, isStreamId, type StreamId } from './context.js'
import { CONFIG_DIGEST_RE } from './config.js'
import { CausewayError } from './errors.js'
import { isSiteId } from './ids.js'
import type { BeatWire } from './beat.js'
import { MAX_LINK_NAMES, type Defs } from './link-codec.js'

/** Replication protocol version carried in every hello; a peer with another version is refused. */
export const PROTOCOL_VERSION = 2

export type Vector = Array<[StreamId, number]>

/**
 * Frames between two sites' engines (inside whatever transport framing the network uses).
 * - hello: first frame after a connection comes up: who I am, whether I accept/send writes, my
 *   received vector (the peer resumes sending from it) and the sites I receive writes from directly.
 * - writes: encoded WriteEntry bytes, in stream order per stream.
 * - ack: my received vector advanced durably (lets the sender trim its log and count pendingOut).
 * - nack: I dropped entries of `stream` after a gap; resend from `have` + 1.
 * - removed: sites removed from the deployment for good (membership.ts); gossiped until every site knows.
 * - bsreq / bschunk: bootstrap (bootstrap.ts): "send me the key states of your shard `shard` after
 *   key `after`"; the reply echoes the request, carries the states (stored KeyState wire form), the
 *   applied vectors before and after they were read, and where to continue. One request in
 *   flight: the receiver paces it (and drops replies to a cursor it has left).
 * - pull: send me back my own `stream` after `have` (I lost entries you hold: restored from a backup).
 * - beat: heartbeat, delta-encoded per connection (beat.ts): my received vector and direct
 *   upstreams (aliveness, relay pruning) and my view of the stability tree (stability-tree.ts).
 *   Nothing new to say costs a handful of bytes, whatever the size of the deployment.
 */
export type Frame =
  | { t: 'hello'; v: number; site: string; accepts: boolean; sends: boolean; rv: Vector; ups: string[]; cfg?: string }
  | { t: 'writes'; e: Uint8Array[] }
  | { t: 'ack'; rv: Vector }
  | { t: 'nack'; stream: StreamId; have: number }
  | ({ t: 'beat' } & BeatWire)
  | { t: 'pull'; stream: StreamId; have: number }
  // Membership (membership.ts, bootstrap.ts): types 6..9.
  | { t: 'removed'; sites: string[] }
  | { t: 'bsreq'; shard: number; after: string }
  | { t: 'bschunk'; reqShard: number; reqAfter: string; before: Vector; after: Vector; states: Array<[string, unknown[]]>; nextShard: number; nextAfter: string; done: boolean }
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
      return encode([4, f.session, f.defs, f.rv, f.ups, f.prune, f.tree])
    case 'pull':
      return encode([5, f.stream, f.have])
    case 'removed':
      return encode([6, f.sites])
    case 'bsreq':
      return encode([7, f.shard, f.after])
    case 'bschunk':
      return encode([8, f.reqShard, f.reqAfter, f.before, f.after, f.states, f.nextShard, f.nextAfter, f.done])
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
  for (const s of x) if (!isSiteId(s)) throw bad('site id')
  return x as string[]
}

function isShardIndex(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= 4096
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
  // Cheap checks first: every frame is a fixarray of 2 to 15 items.
  const b0 = bytes.length < 2 ? 0 : bytes[0]!
  if (b0 < 0x92 || b0 > 0x9f) throw bad('shape')
  const x = decodeUntrusted(bytes)
  if (!Array.isArray(x) || x.length === 0) throw bad('shape')
  switch (x[0]) {
    case 0: {
      if ((x.length !== 7 && x.length !== 8) || typeof x[1] !== 'number' || !isSiteId(x[2]) || typeof x[3] !== 'boolean' || typeof x[4] !== 'boolean') throw bad('hello')
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
    case 4: {
      // Semantics (names, deltas, the tree) are checked against the connection's LinkDecoder (beat.ts).
      if (x.length !== 7 || !Number.isSafeInteger(x[1]) || !Array.isArray(x[2]) || !Array.isArray(x[3]) || !Array.isArray(x[4]) || !Array.isArray(x[5]) || !Array.isArray(x[6])) throw bad('beat')
      if (x[2].length > 2 * MAX_LINK_NAMES || x[3].length > 2 * MAX_LINK_NAMES || x[4].length > 2 * MAX_LINK_NAMES || x[5].length > 2 * MAX_LINK_NAMES) throw bad('beat size')
      return { t: 'beat', session: x[1] as number, defs: x[2] as Defs, rv: x[3] as number[], ups: x[4] as number[], prune: x[5] as number[], tree: x[6] as unknown[] }
    }
    case 5:
      if (x.length !== 3 || !isStreamId(x[1]) || !(x[2] === 0 || isSeq(x[2]))) throw bad('pull')
      return { t: 'pull', stream: x[1], have: x[2] as number }
    case 6:
      if (x.length !== 2) throw bad('removed')
      return { t: 'removed', sites: sites(x[1]) }
    case 7:
      if (x.length !== 3 || !isShardIndex(x[1]) || typeof x[2] !== 'string' || x[2].length > MAX_KEY_BYTES) throw bad('bsreq')
      return { t: 'bsreq', shard: x[1], after: x[2] }
    case 8: {
      if (x.length !== 9 || !isShardIndex(x[1]) || typeof x[2] !== 'string' || x[2].length > MAX_KEY_BYTES) throw bad('bschunk')
      const y = x.slice(2)
      if (!Array.isArray(y[3]) || y[3].length > MAX_FRAME_ENTRIES || !isShardIndex(y[4]) || typeof y[5] !== 'string' || y[5].length > MAX_KEY_BYTES || typeof y[6] !== 'boolean') throw bad('bschunk')
      const states = (y[3] as unknown[]).map((e) => {
        if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || e[0].length === 0 || e[0].length > MAX_KEY_BYTES || !Array.isArray(e[1]) || e[1].length > 10_000) throw bad('bschunk state')
        for (const s of e[1] as unknown[]) {
          if (!Array.isArray(s) || s.length !== 5 || !Number.isSafeInteger(s[0]) || (s[0] as number) < 0 || !isSiteId(s[1]) || !isStreamId(s[2]) || !isSeq(s[3]) || !(s[4] === null || s[4] instanceof Uint8Array)) throw bad('bschunk sibling')
        }
        return [e[0], e[1]] as [string, unknown[]]
      })
      return { t: 'bschunk', reqShard: x[1], reqAfter: x[2], before: vector(y[1]), after: vector(y[2]), states, nextShard: y[4] as number, nextAfter: y[5] as string, done: y[6] as boolean }
    }
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
          if (!Array.isArray(r) || r.length !== 5 || !Number.isSafeInteger(r[0]) || (r[0] as number) < 0 || !isSiteId(r[1]) || !isStreamId(r[2]) || !isSeq(r[3])) throw bad('read-res sibling')
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
