/**
 * Virtual time for deterministic runs: a Clock and Timers whose timers fire only when the
 * simulation advances time (run(ms)), in a total order (due time, then insertion sequence).
 *
 * Between two events the async work they started is allowed to finish: memory storage and the
 * engine resolve through microtasks only, so one macrotask turn (setImmediate) drains all of it.
 * No wall-clock time is read anywhere here.
 *
 * Like tokio's paused clock, time also advances by itself while a keepAlive timer (an operation
 * with a deadline, e.g. a session waiting for its context) is pending and no run() is active:
 * otherwise `await session.get()` outside run() could never reach its deadline. Background timers
 * (heartbeats) alone never advance time.
 */
import { CausewayError } from '@causeway/core'
import type { CancelTimer, Clock, TimerOptions, Timers } from '@causeway/core'

interface VTimer {
  atMs: number
  seq: number
  fn: () => void
  /** Repeat period; 0 for a one-shot timer. */
  everyMs: number
  keepAlive: boolean
  cancelled: boolean
}

function before(a: VTimer, b: VTimer): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq)
}

/** Binary min-heap ordered by (atMs, seq): deterministic order for equal due times. */
class TimerHeap {
  private readonly items: VTimer[] = []
  get size(): number {
    return this.items.length
  }
  peek(): VTimer | undefined {
    return this.items[0]
  }
  push(t: VTimer): void {
    const a = this.items
    a.push(t)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(a[i]!, a[p]!)) break
      ;[a[i], a[p]] = [a[p]!, a[i]!]
      i = p
    }
  }
  pop(): VTimer | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && before(a[l]!, a[m]!)) m = l
        if (r < a.length && before(a[r]!, a[m]!)) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m]!, a[i]!]
        i = m
      }
    }
    return top
  }
  clear(): void {
    this.items.length = 0
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

export class VirtualTime implements Clock, Timers {
  private now: number
  private seq = 0
  private readonly heap = new TimerHeap()
  private keepAlivePending = 0
  private running = false
  private chain: Promise<void> = Promise.resolve()
  private pumping = false
  /** Events fired so far (timers and deliveries), for the CPU-cost report. */
  fired = 0

  constructor(
    startMs: number,
    private readonly onError: (e: unknown) => void,
  ) {
    this.now = startMs
  }

  nowMs(): number {
    return this.now
  }

  after(ms: number, fn: () => void, options?: TimerOptions): CancelTimer {
    return this.add(ms, fn, 0, options?.keepAlive === true)
  }

  every(ms: number, fn: () => void, options?: TimerOptions): CancelTimer {
    if (!(ms > 0)) throw new CausewayError('INVALID_ARGUMENT', 'every() needs a period > 0 ms')
    return this.add(ms, fn, ms, options?.keepAlive === true)
  }

  private add(ms: number, fn: () => void, everyMs: number, keepAlive: boolean): CancelTimer {
    if (typeof fn !== 'function') throw new CausewayError('INVALID_ARGUMENT', 'timer callback must be a function')
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    const t: VTimer = { atMs: this.now + delay, seq: this.seq++, fn, everyMs, keepAlive, cancelled: false }
    this.heap.push(t)
    if (keepAlive) {
      this.keepAlivePending++
      this.startPump()
    }
    return () => {
      if (t.cancelled) return
      t.cancelled = true
      if (t.keepAlive) this.keepAlivePending--
    }
  }

  /**
   * Runs the async work the last event started: memory storage and the engine continue through
   * microtasks only, and one macrotask turn runs every microtask queued before it, to the end
   * (new virtual timers it schedules wait in the heap for their turn).
   */
  drain(): Promise<void> {
    return turn()
  }

  /** Fires the next live timer due at or before limitMs; false when there is none. */
  private fireNext(limitMs: number): boolean {
    for (;;) {
      const t = this.heap.peek()
      if (t === undefined || t.atMs > limitMs) return false
      this.heap.pop()
      if (t.cancelled) continue
      if (t.atMs > this.now) this.now = t.atMs
      if (t.everyMs > 0) {
        t.atMs += t.everyMs
        t.seq = this.seq++
        this.heap.push(t)
      } else {
        t.cancelled = true
        if (t.keepAlive) this.keepAlivePending--
      }
      this.fired++
      try {
        t.fn()
      } catch (e) {
        this.onError(e)
      }
      return true
    }
  }

  /** Advances virtual time by ms, firing every timer due meanwhile; calls are serialized. */
  run(ms: number): Promise<void> {
    if (!(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)) {
      return Promise.reject(new CausewayError('INVALID_ARGUMENT', 'run(ms) needs a finite number of ms >= 0'))
    }
    const p = this.chain.then(async () => {
      this.running = true
      try {
        const target = this.now + ms
        await this.drain()
        while (this.fireNext(target)) await this.drain()
        if (this.now < target) this.now = target
        await this.drain()
      } finally {
        this.running = false
        if (this.keepAlivePending > 0) this.startPump()
      }
    })
    this.chain = p.catch(() => {})
    return p
  }

  /** Free-running while a keepAlive timer waits and no run() is active (see the file comment). */
  private startPump(): void {
    if (this.pumping || this.running) return
    this.pumping = true
    void (async () => {
      try {
        for (;;) {
          await this.drain()
          if (this.running || this.keepAlivePending <= 0) return
          if (!this.fireNext(Infinity)) return
        }
      } finally {
        this.pumping = false
      }
    })()
  }
}
