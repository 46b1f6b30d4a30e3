import { CausewayError } from './errors.js'
import type { Clock, Version } from './types.js'

export const systemClock: Clock = { nowMs: () => Date.now() }

/**
 * How far ahead of this site's physical clock an outside time (a context token's, a peer's write)
 * may be before it is refused. Hybrid logical clocks bound their drift the same way: without it,
 * one forged time near 2^53 moves the clock to where versions overflow and every later write is
 * broken at every site that sees it.
 */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000

/**
 * Lamport times count microseconds of physical time (as a hybrid logical clock's physical part
 * plus counter): a site issuing up to a million writes a second stays at its physical time, so its
 * own clock never drifts past what its peers admit. (With milliseconds, 1,000 writes/s would.)
 */
export const TIME_UNITS_PER_MS = 1000

/** A Lamport time as milliseconds of physical time (for ages and skews). */
export function timeToMs(time: number): number {
  return time / TIME_UNITS_PER_MS
}

/**
 * Hybrid Lamport clock: times are integers seeded from physical milliseconds, never go backwards,
 * and always exceed every time this site has seen (observe()). Persisted high-water marks make it
 * monotonic across restarts too. Times from outside move it only within `maxSkewMs` of physical time.
 */
export class LamportClock {
  private last: number
  constructor(
    private readonly site: string,
    private readonly clock: Clock,
    floor = 0,
    readonly maxSkewMs: number = DEFAULT_MAX_CLOCK_SKEW_MS,
  ) {
    this.last = floor
  }
  private phys(): number {
    return Math.floor(this.clock.nowMs()) * TIME_UNITS_PER_MS
  }
  /** The latest time an outside input may carry right now. */
  limit(): number {
    return this.phys() + this.maxSkewMs * TIME_UNITS_PER_MS
  }
  /** May `time` (from a token or a peer) move this clock? (A time it has reached already moves nothing.) */
  admits(time: number): boolean {
    return time <= this.last || time <= this.limit()
  }
  /**
   * A new time strictly greater than anything seen or issued. Never throws (it runs inside a shard's
   * commit): callers check an outside `atLeast` with admits() before they get here.
   */
  next(atLeast = 0): number {
    const phys = this.phys()
    this.last = Math.max(this.last + 1, phys, atLeast)
    return this.last
  }
  tick(atLeast = 0): Version {
    return { time: this.next(atLeast), site: this.site }
  }
  /** An outside time: refused (CLOCK_SKEW) beyond the skew bound. */
  observe(time: number): void {
    if (time <= this.last) return
    if (time > this.limit()) throw skew(time, this.phys(), this.maxSkewMs)
    this.last = time
  }
  /** The CLOCK_SKEW error refusing an outside `time` (callers check admits() first). */
  skewError(time: number): CausewayError {
    return skew(time, this.phys(), this.maxSkewMs)
  }
  /** A time this site issued or accepted itself (recovery): trusted, so a restart never fails on it. */
  restore(time: number): void {
    if (time > this.last) this.last = time
  }
  get current(): number {
    return this.last
  }
}

function skew(time: number, phys: number, maxSkewMs: number): CausewayError {
  const aheadMs = timeToMs(time - phys)
  return new CausewayError('CLOCK_SKEW', `time ${time} is ${aheadMs} ms ahead of this site's clock (limit ${maxSkewMs} ms)`, {
    details: { aheadMs, maxClockSkewMs: maxSkewMs },
  })
}
