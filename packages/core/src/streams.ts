import { hash32 } from './codec.js'
import type { LamportClock } from './clock.js'
import type { StreamId } from './context.js'
import { decodeEntry, type WriteEntry } from './entry.js'
import { invariant } from './errors.js'
import { RING_BYTES, RING_ENTRIES } from './limits.js'
import type { Shard } from './shard.js'

/**
 * The one home of every stream's state (`<origin site>/<origin shard>`): its progress marks, its
 * ring of recent entries, its log (read through the stream's log shard), and, for this site's own
 * streams, the allocation of sequence numbers.
 */

export interface RingItem {
  bytes: Uint8Array
  entry: WriteEntry | undefined
}

export interface StreamState {
  id: StreamId
  origin: string
  logShard: number
  /** Contiguous prefix durably in the log (relayable). */
  rv: number
  /** Contiguous prefix accepted for logging (>= rv). */
  accepted: number
  /** Contiguous prefix applied (visible). */
  av: number
  /** Applied seqs above av (out-of-order completion). */
  done: Set<number>
  /** Next seq the applier dispatches (remote streams). */
  next: number
  /** Log trimmed up to here. */
  gc: number
  /** This site's own streams: last seq handed to a shard batch (>= rv; rolled back if the batch fails). */
  issued: number
  /** Recent entries, slot = seq % RING_ENTRIES (streams are gapless, so no two live seqs collide). */
  ring: Array<(RingItem & { seq: number }) | undefined>
  ringBytes: number
  /** Entries read for the applier and not applied yet (starting at `next`), bounded by a round's share. */
  lookahead: Array<{ seq: number } & RingItem>
  /**
   * Own streams only: a peer holds more of this stream than this site does; new writes wait while
   * its missing entries are fetched (own-recovery.ts).
   */
  recovery: { from: string; target: number; deadlineMs: number; waiters: Array<() => void> } | undefined
}

/** Entries of this stream wait in the log to be applied (remote streams, or an own stream's fetched ones). */
export function appliesFromLog(s: StreamState): boolean {
  // Local writes apply as they commit (next = rv + 1), so an own stream lags only with fetched entries.
  return s.next <= s.rv
}

/** The data shard of a key. */
export function shardOf(key: string, shardCount: number): number {
  return hash32(key) % shardCount
}

export class Streams {
  private readonly streams = new Map<StreamId, StreamState>()

  constructor(
    private readonly siteId: string,
    private readonly shards: readonly Shard[],
  ) {}

  shardOf(key: string): number {
    return shardOf(key, this.shards.length)
  }

  values(): IterableIterator<StreamState> {
    return this.streams.values()
  }

  get(id: StreamId): StreamState | undefined {
    return this.streams.get(id)
  }

  stream(id: StreamId): StreamState {
    let s = this.streams.get(id)
    if (!s) {
      const slash = id.indexOf('/')
      const origin = id.slice(0, slash)
      const logShard = origin === this.siteId ? Number(id.slice(slash + 1)) : hash32(id) % this.shards.length
      invariant(logShard < this.shards.length, `local stream ${id} beyond the shard count`)
      s = { id, origin, logShard, rv: 0, accepted: 0, av: 0, done: new Set(), next: 1, gc: 0, issued: 0, ring: [], ringBytes: 0, lookahead: [], recovery: undefined }
      this.streams.set(id, s)
    }
    return s
  }

  av(id: StreamId): number {
    return this.streams.get(id)?.av ?? 0
  }

  // ---------------------------------------------------------------- this site's streams

  /** Next sequence number of this site's stream logged in `shard` (allocated at batch build time). */
  allocSeq(shard: number): number {
    return ++this.stream(`${this.siteId}/${shard}`).issued
  }

  /** Roll back allocations after a failed batch, so the stream never has a gap. */
  releaseSeq(shard: number, seq: number): void {
    const s = this.stream(`${this.siteId}/${shard}`)
    invariant(s.issued === seq, 'sequence numbers released out of order')
    s.issued = seq - 1
  }

  // ---------------------------------------------------------------- ring

  ringAdd(s: StreamState, seq: number, bytes: Uint8Array, entry: WriteEntry | undefined): void {
    const slot = seq % RING_ENTRIES
    const old = s.ring[slot]
    if (old) s.ringBytes -= old.bytes.length
    if (s.ringBytes + bytes.length > RING_BYTES) {
      s.ring[slot] = undefined // over budget: this one is read back from the log when needed
      return
    }
    s.ring[slot] = { seq, bytes, entry }
    s.ringBytes += bytes.length
  }

  ringGet(s: StreamState, seq: number): RingItem | undefined {
    const r = s.ring[seq % RING_ENTRIES]
    return r !== undefined && r.seq === seq ? r : undefined
  }

  markApplied(s: StreamState, seq: number): void {
    if (seq <= s.av) return
    s.done.add(seq)
    while (s.done.has(s.av + 1)) {
      s.done.delete(s.av + 1)
      s.av++
    }
  }

  // ---------------------------------------------------------------- the log

  /** Read log entries [from, to] of a stream: from the ring when possible, else from its log shard. */
  async readLog(s: StreamState, from: number, to: number, maxEntries: number, maxBytes: number): Promise<Array<{ seq: number } & RingItem>> {
    const out: Array<{ seq: number } & RingItem> = []
    let bytes = 0
    let seq = from
    while (seq <= to && out.length < maxEntries && bytes < maxBytes) {
      const r = this.ringGet(s, seq)
      if (r) {
        if (out.length > 0 && bytes + r.bytes.length > maxBytes) break // never overshoot a budget
        out.push({ seq, bytes: r.bytes, entry: r.entry })
        bytes += r.bytes.length
        seq++
        continue
      }
      // Fall back to the log for the gap (older than the ring holds).
      let got = 0
      for await (const { seq: q, bytes: v } of this.shards[s.logShard]!.logEntries(s.id, seq, to, maxEntries - out.length)) {
        if (q !== seq) break
        if (out.length > 0 && bytes + v.length > maxBytes) break
        out.push({ seq, bytes: v, entry: undefined })
        bytes += v.length
        seq++
        got++
        if (bytes >= maxBytes || this.ringGet(s, seq)) break
      }
      if (got === 0 || bytes >= maxBytes || out.length >= maxEntries) break // done, or trimmed/missing
    }
    return out
  }

  /** Append accepted entries to the stream's log; durable (per the durability mode) when it resolves. */
  append(s: StreamState, entries: Array<{ seq: number; bytes: Uint8Array; time: number }>): Promise<void> {
    return new Promise<void>((resolve, reject) => this.shards[s.logShard]!.enqueue({ kind: 'log', stream: s.id, entries, resolve, reject }))
  }

  /** Ask the log shard to drop entries up to `floor` (every peer that needs them has them). */
  async trim(s: StreamState, floor: number, clockNow: number): Promise<void> {
    await new Promise<void>((resolve, reject) => this.shards[s.logShard]!.enqueue({ kind: 'trim', stream: s.id, upTo: floor, clock: clockNow, resolve, reject }))
    s.gc = floor
  }

  // ---------------------------------------------------------------- recovery

  /**
   * Rebuild every stream's state from the shards' meta records and logs. Returns this site's own
   * logged-but-unapplied entries (multi-shard writes cut short), which the applier must finish.
   */
  async recover(clock: LamportClock, maxValueBytes: number): Promise<WriteEntry[]> {
    const localReady: WriteEntry[] = []
    const ap: Array<Map<StreamId, number>> = this.shards.map(() => new Map())
    let clockFloor = 0
    for (const sh of this.shards) {
      const meta = await sh.readMeta()
      clockFloor = Math.max(clockFloor, meta.clock)
      for (const [sid, n] of meta.trimmed) {
        const s = this.stream(sid)
        s.gc = Math.max(s.gc, n)
      }
      ap[sh.index] = meta.applied
    }
    clock.restore(clockFloor)
    // Streams are known from their log entries: the last entry's seq is the received prefix.
    for (const sh of this.shards) {
      for (const [sid, last] of await sh.logHeads()) {
        const s = this.stream(sid)
        s.rv = Math.max(s.rv, last)
      }
    }
    for (const s of this.streams.values()) {
      s.rv = Math.max(s.rv, s.gc)
      s.accepted = s.rv
      s.av = s.gc
      s.next = s.gc + 1
      if (s.origin === this.siteId) s.issued = s.rv
      let firstUnapplied = 0
      for await (const { seq, bytes: v } of this.shards[s.logShard]!.logEntries(s.id, s.gc + 1, s.rv)) {
        const entry = decodeEntry(v, maxValueBytes)
        clock.restore(entry.time)
        const dataShards = new Set(entry.ops.map((op) => this.shardOf(op.key)))
        const atomicLocal = s.origin === this.siteId && dataShards.size === 1 && dataShards.has(s.logShard)
        const applied = atomicLocal || [...dataShards].every((d) => (ap[d]!.get(s.id) ?? 0) >= seq)
        if (applied) this.markApplied(s, seq)
        else {
          if (firstUnapplied === 0) firstUnapplied = seq
          if (s.origin === this.siteId) localReady.push(entry)
        }
      }
      s.next = firstUnapplied === 0 ? s.rv + 1 : firstUnapplied
      if (s.origin === this.siteId) s.next = s.rv + 1
    }
    return localReady
  }
}
