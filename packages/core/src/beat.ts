import { isSeq } from './context.js'
import { CausewayError } from './errors.js'
import { isSiteId } from './ids.js'
import type { Defs, LinkDecoder, LinkEncoder } from './link-codec.js'
import type { Publication, TreeInfo, VectorMap } from './stability-tree.js'

/**
 * The heartbeat's contents on one connection, compressed by that connection's LinkEncoder: the
 * received vector, the direct upstreams and the stability tree's view, each as a delta against
 * what was last sent on the connection. A beat with nothing new is a handful of bytes, whatever
 * the number of sites or streams.
 *
 * Wire (after the frame type): [session, defs, rv, ups, prune, tree] with
 *   tree = [root, dist, parent (0 | 1), up (0 | [min, heads, cover]), pub (0 | [root, epoch, min, heads])]
 */
export interface BeatContent {
  rv: ReadonlyMap<string, number>
  ups: ReadonlySet<string>
  /** Origins whose writes the receiver should not relay to the sender (it has them from elsewhere). */
  prune: ReadonlySet<string>
  tree: TreeInfo
}

export interface BeatWire {
  /** The sender's encoder session: a new one means the receiver starts its decoder over. */
  session: number
  defs: Defs
  rv: number[]
  ups: number[]
  prune: number[]
  tree: unknown[]
}

/** Deepest tree a beat may describe (the stability tree's maxHops is far below). */
const MAX_DIST = 1 << 16

export function encodeBeat(enc: LinkEncoder, b: BeatContent): BeatWire {
  const defs: Defs = []
  const rv = enc.vector('rv', b.rv, defs)
  const ups = enc.set('ups', b.ups, defs)
  const prune = enc.set('prune', b.prune, defs)
  const t = b.tree
  const up = t.up ? [enc.vector('up.min', t.up.min, defs), enc.vector('up.heads', t.up.heads, defs), enc.set('up.cover', t.up.cover, defs)] : 0
  const pub = t.pub ? [enc.id(t.pub.root, defs), t.pub.epoch, enc.vector('pub.min', t.pub.min, defs), enc.vector('pub.heads', t.pub.heads, defs)] : 0
  return { session: enc.session, defs, rv, ups, prune, tree: [enc.id(t.root, defs), t.dist, t.parent ? 1 : 0, up, pub] }
}

function bad(what: string): CausewayError {
  return new CausewayError('INVALID_FRAME', `invalid beat: ${what}`)
}

const seq = (q: number): boolean => isSeq(q)

/** Decode a beat against the connection's LinkDecoder. Throws INVALID_FRAME. */
export function decodeBeat(dec: LinkDecoder, w: BeatWire): BeatContent {
  dec.sync(w.session)
  dec.define(w.defs)
  const t = w.tree
  if (!Array.isArray(t) || t.length !== 5) throw bad('tree')
  const root = dec.name(t[0])
  if (!isSiteId(root)) throw bad('root')
  const dist = t[1]
  if (typeof dist !== 'number' || !Number.isInteger(dist) || dist < 0 || dist > MAX_DIST) throw bad('dist')
  if (t[2] !== 0 && t[2] !== 1) throw bad('parent')
  // Shapes first, so most malformed beats change nothing (a hostile peer only garbles its own link).
  const up = t[3]
  if (up !== 0 && (!Array.isArray(up) || up.length !== 3)) throw bad('up')
  const pub = t[4]
  if (pub !== 0 && (!Array.isArray(pub) || pub.length !== 4)) throw bad('pub')
  let pubRoot: string | undefined
  if (pub !== 0) {
    pubRoot = dec.name(pub[0])
    if (!isSiteId(pubRoot) || !Number.isSafeInteger(pub[1]) || (pub[1] as number) < 1) throw bad('pub')
  }
  const rv = new Map(dec.vector('rv', w.rv, seq))
  const ups = new Set(dec.set('ups', w.ups))
  for (const s of ups) if (!isSiteId(s)) throw bad('upstream')
  const prune = new Set(dec.set('prune', w.prune))
  for (const s of prune) if (!isSiteId(s)) throw bad('prune')
  const tree: TreeInfo = { root, dist, parent: t[2] === 1 }
  if (up !== 0) {
    const u = up as unknown[]
    const cover = new Set(dec.set('up.cover', u[2]))
    for (const s of cover) if (!isSiteId(s)) throw bad('cover')
    tree.up = { min: copy(dec.vector('up.min', u[0], seq)), heads: copy(dec.vector('up.heads', u[1], seq)), cover }
  }
  if (pub !== 0) {
    const p = pub as unknown[]
    const out: Publication = { root: pubRoot!, epoch: p[1] as number, min: copy(dec.vector('pub.min', p[2], seq)), heads: copy(dec.vector('pub.heads', p[3], seq)) }
    tree.pub = out
  }
  return { rv, ups, prune, tree }
}

function copy(v: ReadonlyMap<string, number>): VectorMap {
  return new Map(v)
}
