import type { Logger } from './api.js'
import type { LamportClock } from './clock.js'
import type { Timers } from './types.js'
import type { Dot, StreamId } from './context.js'
import { decodeEntry, type WriteEntry, type WriteEntryOp } from './entry.js'
import { ROUND_BYTES, ROUND_ENTRIES, ROUND_SHARE_BYTES_MIN, ROUND_SHARE_ENTRIES_MIN } from './limits.js'
import type { Shard } from './shard.js'
import { appliesFromLog, type RingItem, type Streams, type StreamState } from './streams.js'

/** What the applier needs from its site. */
export interface ApplierHost {
  readonly siteId: string
  readonly clock: LamportClock
  readonly maxValueBytes: number
  readonly log: Logger
  /** Closed or failed: stop applying. */
  stopped(): boolean
  /** A storage failure: the site stops. */
  fail(e: unknown): void
  /** Entries of one of this site's own streams were applied (fetched back after a restore). */
  ownApplied(s: StreamState): void
  readonly timers: Timers
  /** The apply loop went idle (wakes idle()/close() waits). */
  workDone(): void
}

interface ReadyLocal {
  entry: WriteEntry
  /** The shard that already staged its part of the entry with the log entry (none in recovery). */
  stagedAt: number | undefined
  resolve: () => void
  reject: (e: unknown) => void
}

/**
 * The apply pipeline: rounds of entries whose dependencies are satisfied, staged in their shards
 * and made visible all at once; plus the sessions waiting for dependencies to become visible.
 */
export class Applier {
  private readonly listeners = new Set<(keys: string[], origin: string) => void>()
  private waiters: Array<{ deps: Dot[]; resolve: () => void }> = []
  private localReady: ReadyLocal[] = []
  private applying = false
  private rounds = 0
  private applyAgain = false

  constructor(
    private readonly host: ApplierHost,
    private readonly streams: Streams,
    private readonly shards: readonly Shard[],
  ) {}

  /** An apply round is running or local multi-shard writes wait for one. */
  get busy(): boolean {
    return this.applying || this.localReady.length > 0
  }

  get running(): boolean {
    return this.applying
  }

  /** Apply a logged local entry (a multi-shard write) in the next round. */
  addLocal(entry: WriteEntry, resolve: () => void = () => {}, reject: (e: unknown) => void = () => {}, stagedAt?: number): void {
    this.localReady.push({ entry, stagedAt, resolve, reject })
  }

  onApplied(listener: (keys: string[], origin: string) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Release every session waiting for dependencies (the site closes). */
  releaseWaiters(): void {
    for (const w of this.waiters) w.resolve()
    this.waiters = []
  }

  kickApply(): void {
    if (this.applying) {
      this.applyAgain = true
      return
    }
    void this.applyLoop()
  }

  private async applyLoop(): Promise<void> {
    this.applying = true
    try {
      do {
        this.applyAgain = false
        const progressed = await this.applyRound()
        if (progressed) this.applyAgain = true
      } while (this.applyAgain && !this.host.stopped())
    } catch (e) {
      this.host.fail(e)
    } finally {
      this.applying = false
    }
    this.checkWaiters()
    this.host.workDone()
  }

  /**
   * One round: every entry whose dependencies are applied (or applied earlier in this round) is
   * staged in its shards; the round becomes visible all at once when every shard has committed.
   */
  private async applyRound(): Promise<boolean> {
    const ready: WriteEntry[] = []
    const localDone: ReadyLocal[] = this.localReady.splice(0, ROUND_ENTRIES)
    const stagedAt = new Map<WriteEntry, number>()
    for (const l of localDone) {
      ready.push(l.entry)
      if (l.stagedAt !== undefined) stagedAt.set(l.entry, l.stagedAt)
    }
    const inRound = new Map<StreamId, number>()
    const satisfied = (d: Dot): boolean => this.streams.av(d[0]) >= d[1] || (inRound.get(d[0]) ?? 0) >= d[1]
    let progress = true
    const pendingStreams = [...this.streams.values()].filter(appliesFromLog)
    // Rotate the starting stream each round so a busy stream cannot starve the others of the budget.
    const start = pendingStreams.length > 0 ? this.rounds++ % pendingStreams.length : 0
    const remote = [...pendingStreams.slice(start), ...pendingStreams.slice(0, start)]
    const fetched = new Map<StreamId, Array<{ seq: number } & RingItem>>()
    // Entries fetched in earlier rounds but not applied yet stay in the stream's lookahead buffer,
    // so each entry is read from the log once. Fetching tops buffers up to a per-stream share.
    const share = Math.max(ROUND_SHARE_ENTRIES_MIN, Math.floor(ROUND_ENTRIES / Math.max(1, remote.length)))
    const shareBytes = Math.max(ROUND_SHARE_BYTES_MIN, Math.floor(ROUND_BYTES / Math.max(1, remote.length)))
    for (const s of remote) {
      const buf = s.lookahead
      const have = buf.length
      let bytes = 0
      for (const it of buf) bytes += it.bytes.length
      const from = have > 0 ? buf[have - 1]!.seq + 1 : s.next
      if (have < share && bytes < shareBytes && from <= s.rv) {
        const more = await this.streams.readLog(s, from, s.rv, share - have, shareBytes - bytes)
        for (const it of more) buf.push(it)
      }
      fetched.set(s.id, buf)
    }
    // Repeat passes so that cross-stream dependencies inside the round resolve regardless of order.
    const heads = new Map<StreamId, number>()
    while (progress && ready.length < ROUND_ENTRIES) {
      progress = false
      for (const s of remote) {
        const items = fetched.get(s.id)!
        let h = heads.get(s.id) ?? 0
        while (h < items.length && ready.length < ROUND_ENTRIES) {
          const it = items[h]!
          if (s.done.has(it.seq) || it.seq <= s.av) {
            // Applied before a restart: skip without re-applying.
            h++
            s.next = it.seq + 1
            inRound.set(s.id, it.seq)
            progress = true
            continue
          }
          const entry = it.entry ?? decodeEntry(it.bytes, this.host.maxValueBytes)
          it.entry = entry
          if (!entry.deps.every(satisfied)) break
          h++
          ready.push(entry)
          s.next = it.seq + 1
          inRound.set(s.id, it.seq)
          progress = true
        }
        heads.set(s.id, h)
      }
    }
    for (const [sid, h] of heads) if (h > 0) fetched.get(sid)!.splice(0, h)
    if (ready.length === 0) return false
    // Dispatch: one apply item per (entry, shard); all staged.
    const touched: Array<Set<string>> = this.shards.map(() => new Set())
    const pending: Promise<unknown>[] = []
    for (const e of ready) {
      // Admitted within the skew bound when received; trusted now (the physical clock may have stepped back).
      this.host.clock.restore(e.time)
      const byShard = new Map<number, WriteEntryOp[]>()
      const skip = stagedAt.get(e)
      for (const op of e.ops) {
        const d = this.streams.shardOf(op.key)
        touched[d]!.add(op.key)
        if (d === skip) continue // staged with its log entry: installed with the round below
        let l = byShard.get(d)
        if (!l) byShard.set(d, (l = []))
        l.push(op)
      }
      for (const [d, ops] of byShard) {
        pending.push(new Promise((resolve, reject) => this.shards[d]!.enqueue({ kind: 'apply', entry: e, ops, stage: true, resolve, reject })))
      }
    }
    try {
      await Promise.all(pending)
    } catch (e) {
      for (const l of localDone) l.reject(e)
      throw e
    }
    // Visible all together.
    for (let d = 0; d < this.shards.length; d++) if (touched[d]!.size > 0) this.shards[d]!.installStaged(touched[d]!)
    for (const e of ready) this.streams.markApplied(this.streams.stream(e.stream), e.seq)
    for (const e of ready) if (e.site === this.host.siteId) this.host.ownApplied(this.streams.stream(e.stream))
    for (const l of localDone) l.resolve()
    this.afterApplied(ready)
    return true
  }

  afterApplied(entries: WriteEntry[]): void {
    if (this.listeners.size > 0) {
      for (const e of entries) {
        const keys = e.ops.map((op) => op.key)
        for (const l of this.listeners) {
          try {
            l(keys, e.site)
          } catch (err) {
            this.host.log.warn({ err }, 'onApplied listener threw')
          }
        }
      }
    }
    this.checkWaiters()
  }

  private checkWaiters(): void {
    if (this.waiters.length === 0) return
    const still: typeof this.waiters = []
    for (const w of this.waiters) {
      if (w.deps.every(([s, q]) => this.streams.av(s) >= q)) w.resolve()
      else still.push(w)
    }
    this.waiters = still
  }

  /** Wait until every dependency is applied here, up to waitMs. */
  async waitForDeps(deps: Dot[], waitMs: number): Promise<boolean> {
    if (deps.every(([s, q]) => this.streams.av(s) >= q)) return true
    if (waitMs <= 0) return false
    return new Promise<boolean>((resolve) => {
      const w = {
        deps,
        resolve: () => {
          cancel()
          resolve(true)
        },
      }
      // keepAlive: a session waiting for its context must settle before the process may exit.
      const cancel = this.host.timers.after(
        waitMs,
        () => {
          this.waiters = this.waiters.filter((x) => x !== w)
          resolve(false)
        },
        { keepAlive: true },
      )
      this.waiters.push(w)
    })
  }
}
