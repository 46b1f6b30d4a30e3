import { decodeUntrusted, encode } from './codec.js'
import { isSeq, isStreamId, isVersion, type Dot, type StreamId } from './context.js'
import { encodeEntry, MAX_DEPS, MAX_HOLDERS, type WriteEntry } from './entry.js'
import { CausewayError } from './errors.js'
import { SITE_ID_RE } from './ids.js'

/**
 * Runs of scope stubs (sender.ts -> replication.ts). A non-member of a scope receives, for each
 * write in it, only a stub that keeps the stream gapless. Consecutive stubs of one stream travel as
 * ONE record: `[4, stream, from, to, time, site, deps, holders]`, the range `from..to`, the latest
 * time, and the dependencies of its first stub. A stub is only added to a run when its own
 * dependencies are already covered by the run's (or are earlier entries of the same stream), so the
 * run's dependencies are exactly what its first stub needed: no wait is added, and no dependency
 * cycle can form (a later stub depending on something that depends on the first one starts a new
 * run). The receiver expands a run into per-seq stubs: the first with the run's dependencies, the
 * others with none (stream order already puts them after the first).
 */

/** A run never spans more than one frame's entries (sender.ts), so its expansion stays bounded. */
export const MAX_RUN_SEQS = 4096

export interface StubRun {
  stream: StreamId
  from: number
  to: number
  time: number
  site: string
  deps: Dot[]
  holders: string[]
}

/** msgpack fixarray(8) followed by the kind 4: a run record (entries start with kinds 1..3). */
export function isStubRun(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0x98 && bytes[1] === 0x04
}

/** Builds the records for one stream's consecutive stubs within one frame. */
export class StubRunBuilder {
  private run: StubRun | undefined
  private covered = new Map<StreamId, number>()
  private holdersKey = ''

  /** Add a stub; returns the bytes of a finished run when this stub cannot extend it. */
  add(e: WriteEntry): Uint8Array | undefined {
    const key = e.holders!.join(',')
    const r = this.run
    if (r && e.stream === r.stream && e.seq === r.to + 1 && key === this.holdersKey && e.deps.every(([s, q]) => s === e.stream || (this.covered.get(s) ?? 0) >= q)) {
      r.to = e.seq
      r.time = Math.max(r.time, e.time)
      return undefined
    }
    const done = this.flush()
    this.run = { stream: e.stream, from: e.seq, to: e.seq, time: e.time, site: e.site, deps: e.deps, holders: e.holders! }
    this.holdersKey = key
    this.covered = new Map()
    for (const [s, q] of e.deps) if ((this.covered.get(s) ?? 0) < q) this.covered.set(s, q)
    return done
  }

  /** The pending run's bytes (a plain stub entry when it holds one seq), or undefined. */
  flush(): Uint8Array | undefined {
    const r = this.run
    this.run = undefined
    if (!r) return undefined
    if (r.from === r.to) return encodeEntry({ stream: r.stream, seq: r.from, time: r.time, site: r.site, deps: r.deps, ops: [], holders: r.holders })
    return encode([4, r.stream, r.from, r.to, r.time, r.site, r.deps, r.holders])
  }
}

/** Decode and validate a run record; expand it into per-seq stub entries. Throws INVALID_FRAME. */
export function decodeStubRun(bytes: Uint8Array): WriteEntry[] {
  const bad = (why: string): never => {
    throw new CausewayError('INVALID_FRAME', `invalid stub run: ${why}`)
  }
  const w = decodeUntrusted(bytes)
  if (!Array.isArray(w) || w.length !== 8 || w[0] !== 4) return bad('shape')
  const [, stream, from, to, time, site, deps, holders] = w as unknown[]
  if (!isStreamId(stream)) return bad('stream')
  if (!isSeq(from) || !isSeq(to) || to <= from || to - from >= MAX_RUN_SEQS) return bad('range')
  if (!isVersion({ time, site })) return bad('version')
  if (stream.slice(0, stream.indexOf('/')) !== site) return bad('stream origin differs from version site')
  if (!Array.isArray(deps) || deps.length > MAX_DEPS) return bad('deps')
  const outDeps: Dot[] = []
  for (const d of deps) {
    if (!Array.isArray(d) || d.length !== 2 || !isStreamId(d[0]) || !isSeq(d[1])) return bad('dep')
    outDeps.push([d[0], d[1]])
  }
  if (!Array.isArray(holders) || holders.length > MAX_HOLDERS) return bad('holders')
  for (const h of holders) if (typeof h !== 'string' || !SITE_ID_RE.test(h)) return bad('holder')
  const out: WriteEntry[] = []
  for (let q = from; q <= to; q++) {
    out.push({ stream, seq: q, time: time as number, site: site as string, deps: q === from ? outDeps : [], ops: [], holders: [...(holders as string[])] })
  }
  return out
}
