import type { Logger } from './api.js'
import { assertKey, decodeValue } from './codec.js'
import type { LamportClock } from './clock.js'
import { stateFromWire, type KeyState } from './conflict.js'
import { CausewayError } from './errors.js'
import { BOOTSTRAP_RETRY_MS, POLL_MS } from './limits.js'
import type { NetworkAdapter, NetworkHandler, SiteProgress } from './network.js'
import { decodeFrame, encodeFrame, type Frame, type Vector } from './protocol.js'
import type { Shard } from './shard.js'
import type { Streams } from './streams.js'
import type { Clock, Timers } from './types.js'

/** What a bootstrapping site needs from itself. */
export interface BootstrapHost {
  readonly siteId: string
  readonly log: Logger
  readonly wall: Clock
  readonly network: NetworkAdapter
  /** The site to copy from. */
  readonly source: string
  readonly deadlineMs: number
  readonly maxValueBytes: number
  readonly clock: LamportClock
  readonly shards: readonly Shard[]
  readonly streams: Streams
  /** Injected timers (openSite waits on the bootstrap: its deadline keeps the process alive). */
  readonly timers: Timers
  closed(): boolean
}

/**
 * The receiving side of a bootstrap. It stands in for the replication handler while the snapshot
 * is copied (frames other than chunks are held back: the last hello and removal list of each peer
 * are replayed once replication takes over), installs each chunk into its own shards (a snapshot
 * from a site with another shard count is re-sharded on the way), then sets every stream to the
 * snapshot's start vector and hands over to replication, which catches up from there.
 */
export class BootstrapClient implements NetworkHandler {
  private switched = false
  private inFlight = false
  private cursor = { shard: 0, after: '' }
  private start: Vector | undefined
  private readonly end = new Map<string, number>()
  private maxTime = 0
  private done = false
  private failure: Error | undefined
  private installing: Promise<void> = Promise.resolve()
  /** Per peer, the frames replication must see after the hand-over (bounded: one of each kind). */
  private readonly held = new Map<string, { hello?: Uint8Array; removed?: Uint8Array }>()
  private wake: (() => void) | undefined
  private askedAtMs = 0
  /** Keys installed so far (status progress). */
  installed = 0

  constructor(
    readonly host: BootstrapHost,
    private readonly replication: NetworkHandler,
  ) {}

  // ---------------------------------------------------------------- the stand-in handler

  peerUp(peer: string): void {
    if (this.switched) return this.replication.peerUp(peer)
    if (peer === this.host.source) {
      this.inFlight = false
      this.request()
    }
  }

  peerDown(peer: string): void {
    if (this.switched) return this.replication.peerDown(peer)
    this.held.delete(peer)
    if (peer === this.host.source) this.inFlight = false // resumes from the cursor on the next peerUp
  }

  drain(peer: string): void {
    if (this.switched) this.replication.drain(peer)
  }

  inspect(): SiteProgress {
    return this.replication.inspect()
  }

  frame(peer: string, bytes: Uint8Array): void {
    if (this.switched) return this.replication.frame(peer, bytes)
    let f: Frame
    try {
      f = decodeFrame(bytes)
    } catch {
      return // replication will judge this peer once it takes over
    }
    if (f.t === 'hello' || f.t === 'removed') {
      const h = this.held.get(peer) ?? {}
      h[f.t] = bytes
      this.held.set(peer, h)
      return
    }
    if (f.t !== 'bschunk' || peer !== this.host.source || !this.inFlight || this.done) return
    // A late reply to a request we have moved past (a retry, an old connection): dropped.
    if (f.reqShard !== this.cursor.shard || f.reqAfter !== this.cursor.after) return
    this.inFlight = false
    this.installing = this.installing.then(() => this.install(f)).catch((e) => {
      this.failure = e instanceof Error ? e : new Error(String(e))
      this.wake?.()
    })
  }

  private request(): void {
    if (this.inFlight || this.done || this.host.closed()) return
    const f: Frame = { t: 'bsreq', shard: this.cursor.shard, after: this.cursor.after }
    // send() is false both when not connected and when queued over the high-water mark.
    const sent = this.host.network.send(this.host.source, encodeFrame(f)) || this.host.network.connected(this.host.source)
    if (sent) {
      this.inFlight = true
      this.askedAtMs = this.host.wall.nowMs()
    }
  }

  /** A source that ignored us (busy serving others) is asked again, from the same cursor. */
  private retryIfStale(): void {
    if (this.inFlight && this.host.wall.nowMs() - this.askedAtMs > BOOTSTRAP_RETRY_MS) {
      this.inFlight = false
      this.request()
    }
  }

  // ---------------------------------------------------------------- copying

  private async install(f: Frame & { t: 'bschunk' }): Promise<void> {
    // The snapshot's vector is the source's applied vector when the copy started (first chunk).
    if (this.start === undefined) this.start = f.before
    for (const [sid, q] of f.after) if ((this.end.get(sid) ?? 0) < q) this.end.set(sid, q)
    const byShard = new Map<number, Array<[string, KeyState]>>()
    for (const [key, wire] of f.states) {
      assertKey(key)
      const st = stateFromWire(wire)
      for (const s of st) {
        // The one validation of a copied value, as for replicated writes.
        if (s.value !== undefined) {
          if (s.value.length > this.host.maxValueBytes) throw new CausewayError('BOOTSTRAP_FAILED', `snapshot value of ${key} exceeds maxValueBytes`)
          decodeValue(s.value)
        }
        if (s.time > this.maxTime) this.maxTime = s.time
      }
      const d = this.host.streams.shardOf(key)
      let l = byShard.get(d)
      if (!l) byShard.set(d, (l = []))
      l.push([key, st])
    }
    await Promise.all([...byShard].map(([d, states]) => this.host.shards[d]!.installStates(states)))
    this.installed += f.states.length
    this.cursor = { shard: f.nextShard, after: f.nextAfter }
    if (f.done) {
      this.done = true
      this.wake?.()
      return
    }
    this.request()
  }

  /** Copy the whole snapshot; resolves with the vector the receiver must reach before serving. */
  async copy(): Promise<Map<string, number>> {
    await this.host.shards[0]!.markBootstrap(0)
    // The source may already be connected (peerUp came before we were ready to ask).
    if (this.host.network.connected(this.host.source)) this.request()
    while (!this.done) {
      if (this.failure) throw this.failure
      if (this.host.closed()) throw new CausewayError('CLOSED', 'site closed during bootstrap')
      const left = this.host.deadlineMs - this.host.wall.nowMs()
      if (left <= 0) throw this.timeout('copying the snapshot')
      this.retryIfStale()
      await new Promise<void>((r) => {
        this.wake = r
        this.host.timers.after(Math.min(left, 100), r, { keepAlive: true })
      })
      this.wake = undefined
    }
    await this.installing
    if (this.failure) throw this.failure
    await this.setVector(this.start ?? [])
    await this.host.shards[0]!.markBootstrap(1)
    return this.end
  }

  /** Streams start at the snapshot's vector: everything after it comes through replication. */
  private async setVector(v: Vector): Promise<void> {
    this.host.clock.restore(this.maxTime)
    for (const [sid, q] of v) {
      if (q === 0) continue
      const s = this.host.streams.stream(sid)
      s.rv = s.accepted = s.av = q
      s.next = q + 1
      if (s.origin === this.host.siteId) s.issued = q
      s.done.clear()
      // Recorded as a trim floor (with the clock's high-water mark), which is what recovery reads.
      await this.host.streams.trim(s, q, this.host.clock.current)
    }
  }

  /** Replication takes over: it sees every live connection come up, with the peer's held hello. */
  handOver(): void {
    this.switched = true
    for (const c of this.host.network.peers()) {
      if (!this.host.network.connected(c.site)) continue
      this.replication.peerUp(c.site)
      const h = this.held.get(c.site)
      if (h?.hello) this.replication.frame(c.site, h.hello)
      if (h?.removed) this.replication.frame(c.site, h.removed)
    }
    this.held.clear()
  }

  /** Wait until every write the snapshot may reflect is applied here (then the state is a causal cut). */
  async catchUp(target: Map<string, number>): Promise<void> {
    for (;;) {
      let behind = false
      for (const [sid, q] of target) if (this.host.streams.av(sid) < q) behind = true
      if (!behind) return
      if (this.host.closed()) throw new CausewayError('CLOSED', 'site closed during bootstrap')
      if (this.host.wall.nowMs() > this.host.deadlineMs) throw this.timeout('catching up after the snapshot')
      await new Promise<void>((r) => this.host.timers.after(POLL_MS * 5, r, { keepAlive: true }))
    }
  }

  private timeout(what: string): CausewayError {
    return new CausewayError('BOOTSTRAP_FAILED', `bootstrap from ${this.host.source} did not finish in time (${what}; ${this.installed} keys installed)`, {
      details: { source: this.host.source, installed: this.installed },
    })
  }
}

/** A fresh site, or one whose bootstrap was cut short (then it starts over from empty)? */
export async function needsBootstrap(shards: readonly Shard[], streams: Streams): Promise<boolean> {
  const mark = (await shards[0]!.readMeta()).bootstrap
  if (mark === 1) return false
  if (mark === 0) {
    for (const sh of shards) await sh.clearData()
    return true
  }
  if ([...streams.values()].length > 0) return false
  for (const sh of shards) if (await sh.hasStates()) return false
  return true
}

/** Start the network on the client, copy, hand over to replication, start beats, catch up. */
export async function runBootstrap(client: BootstrapClient, startHeartbeat: () => void): Promise<void> {
  const { network, source, siteId, log } = client.host
  try {
    await network.start(siteId, client)
    const target = await client.copy()
    client.handOver()
    startHeartbeat()
    await client.catchUp(target)
    log.info({ source, keys: client.installed }, 'bootstrap installed')
  } catch (e) {
    if (e instanceof CausewayError && (e.code === 'BOOTSTRAP_FAILED' || e.code === 'CLOSED')) throw e
    throw new CausewayError('BOOTSTRAP_FAILED', `bootstrap from ${source} failed: ${(e as Error).message}`, { cause: e })
  }
}
