import { timeToMs } from './clock.js'
import type { Frame } from './protocol.js'
import type { Logger } from './api.js'
import { decodeEntry, encodeEntry } from './entry.js'
import { FRAME_BYTES, FRAME_ENTRIES, FRAME_OVERHEAD_BYTES } from './limits.js'
import type { NetworkAdapter, PeerConfig } from './network.js'
import type { PeerLink } from './peer-link.js'
import type { RingItem, StreamState, Streams } from './streams.js'
import type { Clock } from './types.js'
import type { Scopes } from './scopes.js'
import { StubRunBuilder } from './stub.js'
import type { WriteEntry } from './entry.js'

/** What the sender needs from its site. */
export interface SenderHost {
  readonly siteId: string
  readonly network: NetworkAdapter | undefined
  readonly maxValueBytes: number
  readonly log: Logger
  readonly wall: Clock
  /** ttl rules, longest prefix first. */
  readonly ttlRules: ReadonlyArray<[string, number]>
  readonly scopes: Scopes
  closed(): boolean
}

/**
 * The sending side of the peer protocol: which streams go to which peer, and the pump that reads
 * each peer's missing log entries (ring first, then the log) into bounded writes frames.
 */
export class Sender {
  constructor(
    private readonly host: SenderHost,
    private readonly streams: Streams,
    private readonly peers: ReadonlyMap<string, PeerLink>,
    private readonly peerConfig: (peer: string) => PeerConfig | undefined,
    private readonly send: (p: PeerLink, f: Frame) => boolean,
  ) {}

  /** Should stream `s` go to peer p? Not back to its origin, and not when p hears the origin directly. */
  private relays(p: PeerLink, s: StreamState): boolean {
    if (s.origin === p.id) return p.pulls.has(s.id)
    if (s.origin !== this.host.siteId && (p.ups.has(s.origin) || p.pruned.has(s.origin))) return false
    return true
  }

  private canSend(p: PeerLink): boolean {
    return p.up && p.helloIn && p.theirAccepts && !p.blocked && !this.host.closed() && this.peerConfig(p.id)?.send !== false
  }

  hasSendable(p: PeerLink): boolean {
    if (!this.canSend(p)) return false
    for (const s of this.streams.values()) {
      if (!this.relays(p, s)) continue
      const from = Math.max(p.cursor.get(s.id) ?? 0, p.known.get(s.id) ?? 0)
      if (s.rv > from) return true
    }
    return false
  }

  pumpAll(): void {
    for (const p of this.peers.values()) if (p.up && p.helloIn) void this.pump(p)
  }

  async pump(p: PeerLink): Promise<void> {
    if (p.pumping) {
      p.repump = true
      return
    }
    p.pumping = true
    try {
      do {
        p.repump = false
        // Frame budget: ours, and never more than the transport accepts (minus framing overhead).
        const frameBytes = Math.min(FRAME_BYTES, Math.max(FRAME_OVERHEAD_BYTES, (this.host.network!.maxFrameBytes ?? Infinity) - FRAME_OVERHEAD_BYTES))
        while (this.canSend(p)) {
          const batch: Uint8Array[] = []
          const before = new Map(p.cursor)
          const rewinds = p.rewinds
          let bytes = 0
          for (const s of this.streams.values()) {
            if (batch.length >= FRAME_ENTRIES || bytes >= frameBytes) break
            if (!this.relays(p, s)) continue
            const from = Math.max(p.cursor.get(s.id) ?? 0, p.known.get(s.id) ?? 0) + 1
            if (from > s.rv) continue
            const items = await this.streams.readLog(s, from, s.rv, FRAME_ENTRIES - batch.length, frameBytes - bytes)
            if (items.length === 0 || (batch.length > 0 && bytes + items[0]!.bytes.length > frameBytes)) {
              if (items.length > 0) break // the next entry starts the next frame

              this.host.log.error({ stream: s.id, from, peer: p.id }, 'log entries a peer needs are missing')
              continue
            }
            const runs = new StubRunBuilder()
            const push = (b: Uint8Array | undefined): void => {
              if (b === undefined) return
              batch.push(b)
              bytes += b.length
            }
            for (const it of items) {
              const stub = this.host.scopes.empty ? undefined : this.scopeStub(p, it)
              if (stub) push(runs.add(stub))
              else {
                push(runs.flush())
                push(this.host.ttlRules.length > 0 ? this.expireIfLate(it) : it.bytes)
              }
            }
            push(runs.flush())
            p.cursor.set(s.id, items[items.length - 1]!.seq)
          }
          if (batch.length === 0) break
          if (p.rewinds !== rewinds) {
            // A nack moved the cursor back while we read the log: this batch would skip entries.
            p.repump = true
            break
          }
          if (!this.canSend(p)) {
            p.cursor.clear()
            break
          }
          let ok: boolean
          try {
            ok = this.send(p, { t: 'writes', e: batch })
          } catch (e) {
            // Not sent: rewind so these entries go out again (after reconnect at the latest).
            p.cursor = before
            throw e
          }
          if (!ok) {
            if (this.host.network!.connected(p.id)) p.blocked = true
            break
          }
        }
      } while (p.repump && this.canSend(p))
    } catch (e) {
      this.host.log.error({ err: e, peer: p.id }, 'replication send failed')
    } finally {
      p.pumping = false
    }
  }

  /**
   * A scope stub when the entry's keys are in a scope `p` is not a member of (values and key names
   * never reach a non-member), or the stub it already is; undefined: send the entry itself.
   */
  private scopeStub(p: PeerLink, it: RingItem): WriteEntry | undefined {
    const e = it.entry ?? decodeEntry(it.bytes, this.host.maxValueBytes)
    it.entry = e
    if (e.holders !== undefined) return e
    if (e.ops.length === 0) return undefined
    const holders = this.host.scopes.holdersOf(e.ops.map((o) => o.key))
    if (holders === undefined || holders.includes(p.id)) return undefined
    return { stream: e.stream, seq: e.seq, time: e.time, site: e.site, deps: e.deps, ops: [], holders: [...holders] }
  }

  /** The bytes to send for a queued entry: itself, or an expired stub when its ttl has passed. */
  private expireIfLate(it: RingItem): Uint8Array {
    const e = it.entry ?? decodeEntry(it.bytes, this.host.maxValueBytes)
    it.entry = e
    if (e.expired || e.ops.length === 0) return it.bytes
    const ageMs = this.host.wall.nowMs() - timeToMs(e.time)
    // Every op must be past its keyspace's ttl: a write is dropped whole or not at all.
    for (const op of e.ops) {
      const rule = this.host.ttlRules.find(([p]) => op.key.startsWith(p))
      if (!rule || ageMs <= rule[1]) return it.bytes
    }
    this.host.log.info({ stream: e.stream, seq: e.seq, ageMs }, 'queued write expired (ttl): sending a stub')
    return encodeEntry({ ...e, ops: [], expired: true })
  }
}
