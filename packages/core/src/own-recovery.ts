import type { Logger } from './api.js'
import type { Vector } from './protocol.js'
import type { StreamState, Streams } from './streams.js'
import type { Clock } from './types.js'

/**
 * A peer says it holds more of one of this site's own streams than this site does. Either this
 * site's data is older than what it acknowledged (restored from a backup) or the peer lies. Writing
 * on would reuse sequence numbers the peer may already hold, so new writes to that stream wait
 * (reads go on) while the missing entries are fetched from the claimer (a `pull` frame). They are
 * logged and applied like a remote stream's, and new writes continue after them. A claimer that
 * does not deliver within `timeoutMs` is reported faulty and writing resumes.
 */
export interface RecoveryHost {
  readonly siteId: string
  readonly shardCount: number
  readonly log: Logger
  readonly wall: Clock
  readonly timeoutMs: number
  /** Ask `peer` for `stream` after `have`. */
  pull(peer: string, stream: string, have: number): void
  /** The peer claimed what it could not deliver, or claimed nonsense. */
  faulty(peer: string, why: string): void
  kickApply(): void
}

export class OwnRecovery {
  constructor(
    private readonly host: RecoveryHost,
    private readonly streams: Streams,
  ) {}

  /** A hello or beat from `peer` listed these streams: check the claims on our own ones. */
  claims(peer: string, rv: Vector): void {
    const own = this.host.siteId + '/'
    for (const [sid, q] of rv) {
      if (!sid.startsWith(own)) continue
      const shard = Number(sid.slice(own.length))
      if (!(shard < this.host.shardCount)) {
        this.host.faulty(peer, `claims stream ${sid} of this site, which has ${this.host.shardCount} shards`)
        continue
      }
      const s = this.streams.stream(sid)
      if (q <= s.rv) continue
      const r = s.recovery
      if (r && r.from !== peer && r.target >= q) continue
      this.host.log.warn({ peer, stream: sid, have: s.rv, claimed: q }, "a peer holds more of this site's own stream than it does: fetching the missing entries before writing to it again")
      const deadlineMs = this.host.wall.nowMs() + this.host.timeoutMs
      if (r) {
        r.target = Math.max(r.target, q)
        if (r.from !== peer) {
          r.from = peer
          r.deadlineMs = deadlineMs
        }
      } else s.recovery = { from: peer, target: q, deadlineMs, waiters: [] }
      this.host.pull(peer, sid, s.rv)
    }
  }

  /** Resolves when `s` may take new local writes (at once unless it is being recovered). */
  ready(s: StreamState | undefined): Promise<void> | undefined {
    const r = s?.recovery
    if (!r) return undefined
    return new Promise<void>((resolve) => r.waiters.push(resolve))
  }

  /** Fetched entries of `s` were logged: new writes continue after them. */
  logged(s: StreamState): void {
    s.issued = Math.max(s.issued, s.rv)
    this.check(s)
  }

  /** Entries of `s` were applied. */
  check(s: StreamState): void {
    const r = s.recovery
    if (!r || s.rv < r.target) return
    if (s.av < s.rv) {
      this.host.kickApply()
      return
    }
    this.host.log.info({ stream: s.id, seq: s.rv }, 'recovered the missing entries of an own stream')
    this.end(s)
  }

  /** Heartbeat: recoveries past their deadline give up on their source. */
  tick(): void {
    const now = this.host.wall.nowMs()
    for (const s of this.streams.values()) {
      const r = s.recovery
      if (!r || now < r.deadlineMs) continue
      this.host.faulty(r.from, `claimed entries of stream ${s.id} up to ${r.target} but delivered only up to ${s.rv}`)
      if (s.av < s.rv) {
        // What did arrive is applied first; writes continue after it.
        r.target = s.rv
        r.deadlineMs = now + this.host.timeoutMs
        this.host.kickApply()
      } else this.end(s)
    }
  }

  private end(s: StreamState): void {
    const r = s.recovery
    if (!r) return
    s.recovery = undefined
    s.next = s.rv + 1
    for (const w of r.waiters) w()
  }
}
