import type { Clock, Version } from './types.js'

export const systemClock: Clock = { nowMs: () => Date.now() }

/**
 * Hybrid Lamport clock: times are integers seeded from physical milliseconds, never go backwards,
 * and always exceed every time this site has seen (observe()). Persisted high-water marks make it
 * monotonic across restarts too.
 */
export class LamportClock {
  private last: number
  constructor(private readonly site: string, private readonly clock: Clock, floor = 0) {
    this.last = floor
  }
  /** A new time strictly greater than anything seen or issued. */
  next(atLeast = 0): number {
    const phys = Math.floor(this.clock.nowMs())
    this.last = Math.max(this.last + 1, phys, atLeast)
    return this.last
  }
  tick(atLeast = 0): Version {
    return { time: this.next(atLeast), site: this.site }
  }
  observe(time: number): void {
    if (time > this.last) this.last = time
  }
  get current(): number {
    return this.last
  }
}
