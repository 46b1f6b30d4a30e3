import { CausewayError } from './errors.js'

/**
 * Per-connection compression of control frames. Names (stream and site ids) cross a connection once
 * and are small integers afterwards; vectors and sets cross as deltas against what was last sent on
 * the same connection (frames are reliable and ordered while a connection is up, and both ends start
 * over when it comes up again). So an idle beat is a few bytes whatever the size of the deployment.
 *
 * Wire shapes (all flat arrays of numbers, after MessagePack):
 *   defs:   [id, name, id, name, ...]   (ids are assigned 0, 1, 2, ... in order)
 *   vector: [id, value, id, value, ...] (value 0 = the entry left the vector)
 *   set:    [id, +1 | -1, ...]
 */

/** Names one connection may define: every stream of 1,024 sites × 64 shards, plus the sites. */
export const MAX_LINK_NAMES = 70_000

export type Defs = Array<number | string>

export class LinkEncoder {
  /** Identifies this encoder's state to the decoder: a decoder seeing a new session starts over. */
  constructor(readonly session: number) {}
  private readonly ids = new Map<string, number>()
  private readonly vectors = new Map<string, Map<string, number>>()
  private readonly sets = new Map<string, Set<string>>()

  /** The id of `name`; a first use appends its definition to `defs`. */
  id(name: string, defs: Defs): number {
    let id = this.ids.get(name)
    if (id === undefined) {
      id = this.ids.size
      this.ids.set(name, id)
      defs.push(id, name)
    }
    return id
  }

  /** Changes of vector `channel` since it was last sent on this connection. */
  vector(channel: string, v: ReadonlyMap<string, number>, defs: Defs): number[] {
    let last = this.vectors.get(channel)
    if (!last) this.vectors.set(channel, (last = new Map()))
    const out: number[] = []
    for (const [k, q] of v) {
      if (last.get(k) === q) continue
      out.push(this.id(k, defs), q)
      last.set(k, q)
    }
    for (const k of last.keys()) {
      if (v.has(k)) continue
      out.push(this.id(k, defs), 0)
      last.delete(k)
    }
    return out
  }

  /** Changes of set `channel` since it was last sent. */
  set(channel: string, s: ReadonlySet<string>, defs: Defs): number[] {
    let last = this.sets.get(channel)
    if (!last) this.sets.set(channel, (last = new Set()))
    const out: number[] = []
    for (const k of s) if (!last.has(k)) {
      out.push(this.id(k, defs), 1)
      last.add(k)
    }
    for (const k of last) if (!s.has(k)) {
      out.push(this.id(k, defs), -1)
      last.delete(k)
    }
    return out
  }
}

function bad(what: string): CausewayError {
  return new CausewayError('INVALID_FRAME', `invalid frame: ${what}`)
}

export class LinkDecoder {
  private names: string[] = []
  private vectors = new Map<string, Map<string, number>>()
  private sets = new Map<string, Set<string>>()
  private session: number | undefined

  constructor(private readonly validName: (name: string) => boolean) {}

  /**
   * The sender's session: a different one than before means the sender started over (a new
   * connection it saw and we may not have, say), so this decoder starts over too.
   */
  sync(session: number): void {
    if (session === this.session) return
    this.session = session
    this.names = []
    this.vectors = new Map()
    this.sets = new Map()
  }

  /** Learn the definitions of a frame. Throws INVALID_FRAME (nothing learnt) on anything wrong. */
  define(defs: unknown): void {
    if (defs === undefined) return
    if (!Array.isArray(defs) || defs.length % 2 !== 0) throw bad('defs')
    if (this.names.length + defs.length / 2 > MAX_LINK_NAMES) throw bad('too many names on one connection')
    for (let i = 0; i < defs.length; i += 2) {
      if (defs[i] !== this.names.length + i / 2) throw bad('def id out of order')
      const name = defs[i + 1]
      if (typeof name !== 'string' || !this.validName(name)) throw bad('def name')
    }
    for (let i = 1; i < defs.length; i += 2) this.names.push(defs[i] as string)
  }

  name(id: unknown): string {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.names.length) throw bad('unknown name id')
    return this.names[id]!
  }

  /** Apply a vector delta; returns the full vector as now known (owned by the decoder: copy to keep). */
  vector(channel: string, delta: unknown, valid: (q: number) => boolean): ReadonlyMap<string, number> {
    if (!Array.isArray(delta) || delta.length % 2 !== 0) throw bad('vector delta')
    // Validate everything before changing anything: a frame is applied whole or not at all.
    const changes: Array<[string, number]> = []
    for (let i = 0; i < delta.length; i += 2) {
      const q = delta[i + 1]
      if (typeof q !== 'number' || !(q === 0 || valid(q))) throw bad('vector value')
      changes.push([this.name(delta[i]), q])
    }
    let v = this.vectors.get(channel)
    if (!v) this.vectors.set(channel, (v = new Map()))
    for (const [k, q] of changes) {
      if (q === 0) v.delete(k)
      else v.set(k, q)
    }
    return v
  }

  set(channel: string, delta: unknown): ReadonlySet<string> {
    if (!Array.isArray(delta) || delta.length % 2 !== 0) throw bad('set delta')
    const changes: Array<[string, boolean]> = []
    for (let i = 0; i < delta.length; i += 2) {
      const op = delta[i + 1]
      if (op !== 1 && op !== -1) throw bad('set op')
      changes.push([this.name(delta[i]), op === 1])
    }
    let s = this.sets.get(channel)
    if (!s) this.sets.set(channel, (s = new Set()))
    for (const [k, add] of changes) {
      if (add) s.add(k)
      else s.delete(k)
    }
    return s
  }
}
