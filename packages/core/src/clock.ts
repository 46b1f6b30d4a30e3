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
  /** The latest time an outside input may carry right now. */
  limit(): number {
    return Math.floor(this.clock.nowMs()) + this.maxSkewMs
  }
  /** May `time` (from a token or a peer) move this clock? */
  admits(time: number): boolean {
    // A time this clock already reached is not an outside move: a site writing more than once per
    // millisecond runs ahead of physical time by its own ticks, and its sessions carry those times.
    return time <= this.last || time <= this.limit()
  }
  /**
   * A new time strictly greater than anything seen or issued. Never throws (it runs inside a shard's
   * commit): callers check an outside `atLeast` with admits() before they get here.
   */
  next(atLeast = 0): number {
    const phys = Math.floor(this.clock.nowMs())
    this.last = Math.max(this.last + 1, phys, atLeast)
    return this.last
  }
  tick(atLeast = 0): Version {
    return { time: this.next(atLeast), site: this.site }
  }
  /** An outside time: refused (CLOCK_SKEW) beyond the skew bound. */
  observe(time: number): void {
    if (time <= this.last) return
    const phys = Math.floor(this.clock.nowMs())
    if (time > phys + this.maxSkewMs) throw skew(time, phys, this.maxSkewMs)
    this.last = time
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
  return new CausewayError('CLOCK_SKEW', `time ${time} is ${time - phys} ms ahead of this site's clock (limit ${maxSkewMs} ms)`, {
    details: { aheadMs: time - phys, maxClockSkewMs: maxSkewMs },
  })
}
