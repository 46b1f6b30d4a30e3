import type { Logger } from './api.js'
import type { Clock } from './types.js'

/**
 * Warnings about a peer's bad input, at most one per (peer, reason) per interval: a hostile peer
 * must not be able to flood the log any more than the site.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>()
  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly intervalMs = 10_000,
    private readonly maxKeys = 1024,
  ) {}

  warn(peer: string, reason: string, obj: object, msg: string): void {
    const k = `${peer}\u0000${reason}`
    const now = this.clock.nowMs()
    const cur = this.last.get(k)
    if (cur && now - cur.atMs < this.intervalMs) {
      cur.suppressed++
      return
    }
    if (!cur && this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value as string)
    this.last.set(k, { atMs: now, suppressed: 0 })
    this.log.warn({ peer, ...obj, ...(cur?.suppressed ? { suppressed: cur.suppressed } : {}) }, msg)
  }
}
