import type { Logger } from './api.js'
import type { Dot, StreamId } from './context.js'
import type { KeyState } from './conflict.js'
import { RemoteReads } from './remote-read.js'
import { decodeEntry, encodeEntry, type WriteEntry } from './entry.js'
import { decodeStubRun, isStubRun } from './stub.js'
import { CausewayError } from './errors.js'
import { timeToMs, type LamportClock } from './clock.js'
import { STARTUP_UPSTREAM_GRACE_MS, FRAME_BYTES, FRAME_OVERHEAD_BYTES, BAD_FRAME_WINDOW_MS, FAULTY_COOLDOWN_MS, MAX_BAD_FRAMES, MAX_ENTRY_BYTES, MAX_INBOUND_FRAMES, PEER_WARN_INTERVAL_MS } from './limits.js'
import { OwnRecovery } from './own-recovery.js'
import { RateLimitedLog } from './ratelog.js'
import type { NetworkAdapter, NetworkHandler, PeerConfig, SiteProgress } from './network.js'
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, type Frame, type Vector } from './protocol.js'
import { decodeBeat, encodeBeat } from './beat.js'
import { isStreamId } from './context.js'
import { isSiteId } from './ids.js'
import { LinkDecoder, LinkEncoder } from './link-codec.js'
import type { TreeInfo } from './stability-tree.js'
import { type PeerLink } from './peer-link.js'
import { Sender } from './sender.js'
import { siteStatus } from './peer-status.js'
import { RelayControl } from './relay-control.js'
import type { StreamState, Streams } from './streams.js'
import type { Clock, SiteStatus, Timers } from './types.js'
import { digestMismatch } from './config.js'
import type { Scopes } from './scopes.js'

/**
 * The peer protocol: one link per configured peer (hello, beats, acks, nacks), receiving writes
 * into the streams' logs, and pumping each peer the log entries it lacks.
 */

/** What stability and trimming may know of a peer. */
export interface PeerView {
  readonly neverAccepts: boolean
  readonly known: ReadonlyMap<StreamId, number>
}

/** The stability tree's part of beats (stability.ts). */
export interface Gossip {
  onBeat(peer: string, info: TreeInfo): void
  onDown(peer: string): void
  beatFor(peer: string): TreeInfo
}

/** Membership as the peer protocol sees it (membership.ts). */
export interface MembershipView {
  isRemoved(site: string): boolean
  list(): string[]
  /** A `removed` frame arrived. */
  received(from: string, sites: string[]): void
  /** A connection came up (after our hello). */
  peerUp(peer: string): void
}

/** What the peer protocol needs from its site. */
export interface ReplicationHost {
  readonly siteId: string
  readonly network: NetworkAdapter | undefined
  readonly maxValueBytes: number
  readonly log: Logger
  readonly wall: Clock
  readonly timers: Timers
  readonly clock: LamportClock
  readonly shardCount: number
  /** How long writes wait for entries a peer claims of our own stream (recoveryTimeoutMs). */
  readonly recoveryTimeoutMs: number
  /** ttl rules, longest prefix first. */
  readonly ttlRules: ReadonlyArray<[string, number]>
  /** Removed sites: refused, shown as 'removed' (set once the site is wired). */
  readonly membership?: MembershipView
  /** A peer silent for longer than this stops holding back log trimming ('expired'). */
  readonly offlineHorizonMs?: number
  /** Serves bootstrap requests (bootstrap-source.ts). */
  readonly bootstrapSource?: { request(peer: string, shard: number, after: string): void }
  /** Digest of conflicts + scopes (config.ts), carried in hello. */
  readonly configDigest: string
  readonly scopes: Scopes
  waitForDeps(deps: Dot[], waitMs: number): Promise<boolean>
  readStates(keys: string[]): Promise<Map<string, KeyState>>
  closed(): boolean
  failed(): boolean
  fail(e: unknown): void
  kickApply(): void
  isLocalIdle(): boolean
  /** An inbound frame finished (wakes idle()/close() waits). */
  workDone(): void
}

export class Replication implements NetworkHandler {
  private readonly peers = new Map<string, PeerLink>()
  /** Relay pruning and re-asking lost frames (relay-control.ts). */
  private readonly relays: RelayControl
  private readonly sender: Sender
  /** Warnings about what peers send, rate-limited per peer and reason. */
  private readonly peerLog: RateLimitedLog
  readonly recovery: OwnRecovery
  /** Peers never seen since this site opened count as silent since then. */
  private readonly openedAtMs: number
  /** Remote reads of keys held at other sites (remote-read.ts). */
  readonly remote: RemoteReads

  constructor(
    private readonly host: ReplicationHost,
    private readonly streams: Streams,
    private readonly gossip: Gossip,
  ) {
    this.sender = new Sender(host, streams, this.peers, (peer) => this.peerConfig(peer), (p, f) => this.send(p, f))
    this.relays = new RelayControl(host.siteId, streams)
    this.remote = new RemoteReads({
      siteId: host.siteId,
      scopes: host.scopes,
      log: host.log,
      frameBytes: () => Math.min(FRAME_BYTES, Math.max(FRAME_OVERHEAD_BYTES, (host.network?.maxFrameBytes ?? Infinity) - FRAME_OVERHEAD_BYTES)),
      reachable: (site) => {
        const p = this.peers.get(site)
        return p !== undefined && p.up && p.helloIn && p.incompatible === undefined
      },
      send: (site, f) => {
        const p = this.peers.get(site)
        return p !== undefined && this.send(p, f)
      },
      admits: (t) => host.clock.admits(t),
      waitForDeps: (deps, ms) => host.waitForDeps(deps, ms),
      readStates: (keys) => host.readStates(keys),
      timers: host.timers,
    })
    this.peerLog = new RateLimitedLog(host.log, host.wall, PEER_WARN_INTERVAL_MS)
    this.openedAtMs = host.wall.nowMs()
    this.recovery = new OwnRecovery(
      {
        siteId: host.siteId,
        shardCount: host.shardCount,
        log: host.log,
        wall: host.wall,
        timeoutMs: host.recoveryTimeoutMs,
        pull: (peer, stream, have) => {
          const p = this.peers.get(peer)
          if (p?.up) this.send(p, { t: 'pull', stream, have })
        },
        faulty: (peer, why) => this.markFaulty(peer, why),
        kickApply: () => host.kickApply(),
      },
      streams,
    )
  }

  /** Send the log entries every peer lacks. */
  pumpAll(): void {
    this.sender.pumpAll()
  }

  /** What a peer is known to hold (undefined: never heard of). */
  peerView(site: string): PeerView | undefined {
    return this.peers.get(site)
  }

  /**
   * Silent for longer than offlineHorizonMs (not connected): it no longer holds back trimming.
   * Not persisted: after a restart every peer gets the full horizon again (the safe side).
   */
  expired(site: string): boolean {
    const horizon = this.host.offlineHorizonMs
    if (horizon === undefined) return false
    const p = this.peers.get(site)
    if (p?.up) return false
    const last = p?.everSeen ? p.lastSeenAt : this.openedAtMs
    return this.host.wall.nowMs() - last > horizon
  }

  /** Frames from some peer are still being processed. */
  inboundBusy(): boolean {
    for (const p of this.peers.values()) if (p.inboundDepth > 0) return true
    return false
  }

  /** Wait for every peer's inbound frames to be processed (closing). */
  async settleInbound(): Promise<void> {
    for (const p of this.peers.values()) await p.inbound.catch(() => {})
  }

  private link(peer: string): PeerLink {
    let p = this.peers.get(peer)
    if (!p) {
      p = {
        id: peer,
        up: false,
        helloIn: false,
        everSeen: false,
        lastSeenAt: 0,
        theirAccepts: false,
        theirSends: false,
        neverAccepts: false,
        known: new Map(),
        cursor: new Map(),
        ups: new Set(),
        blocked: false,
        pumping: false,
        repump: false,
        inbound: Promise.resolve(),
        inboundDepth: 0,
        deferred: new Set(),
        pulls: new Set(),
        pruned: new Set(),
        pruneOut: new Map(),
        rewinds: 0,
        enc: this.newEncoder(),
        dec: newDecoder(),
        badFrames: 0,
        badSinceMs: 0,
        faultyUntilMs: 0,
      }
      this.peers.set(peer, p)
    }
    return p
  }

  private peerConfig(peer: string): PeerConfig | undefined {
    // A removed member is no peer any more, whatever the network's static configuration says.
    if (this.host.membership?.isRemoved(peer)) return undefined
    return this.host.network?.peers().find((c) => c.site === peer)
  }

  private send(p: PeerLink, f: Frame): boolean {
    return this.host.network!.send(p.id, encodeFrame(f))
  }

  private rvVector(): Vector {
    return [...this.rvMap()]
  }


  private encoders = 0
  /** Sessions distinguish this encoder from any earlier one towards the same peer, across restarts too. */
  private newEncoder(): LinkEncoder {
    return new LinkEncoder((((Math.floor(this.host.wall.nowMs()) & 0x1fffff) << 10) | (++this.encoders & 0x3ff)) >>> 0)
  }

  /**
   * The sites this one hears first-hand (announced in hello and beats, so peers do not relay their
   * writes to us): connected ones that send, ones whose connection is up and hello still on its way,
   * and, for a short while after start, configured ones not seen yet (links come up one by one).
   */
  private upstreams(): string[] {
    const out: string[] = []
    const starting = this.host.wall.nowMs() - this.openedAtMs < STARTUP_UPSTREAM_GRACE_MS
    for (const c of this.host.network?.peers() ?? []) {
      if (!c.receive) continue
      const p = this.peers.get(c.site)
      if (p?.up ? !p.helloIn || p.theirSends : starting && !p?.everSeen) out.push(c.site)
    }
    return out
  }

  peerUp(peer: string): void {
    if (this.host.closed()) return
    if (this.host.membership?.isRemoved(peer)) {
      this.host.network?.disconnect?.(peer)
      return
    }
    const cfg = this.peerConfig(peer)
    if (!cfg) {
      this.host.log.warn({ peer }, 'connection from a site that is not a configured peer: ignored')
      return
    }
    const p = this.link(peer)
    if (p.faultyUntilMs > this.host.wall.nowMs()) {
      this.host.network?.disconnect?.(peer)
      return
    }
    p.up = true
    p.helloIn = false
    p.blocked = false
    p.cursor.clear()
    p.everSeen = true
    p.lastSeenAt = this.host.wall.nowMs()
    p.enc = this.newEncoder()
    p.dec = newDecoder()
    p.pruned.clear()
    p.pruneOut.clear()
    this.send(p, { t: 'hello', v: PROTOCOL_VERSION, site: this.host.siteId, accepts: cfg.receive, sends: cfg.send, rv: this.rvVector(), ups: this.upstreams(), cfg: this.host.configDigest })
    this.broadcastBeat()
    this.host.membership?.peerUp(peer)
  }

  /** Send a frame to one connected peer (membership, bootstrap). */
  sendTo(peer: string, f: Frame): boolean {
    const p = this.peers.get(peer)
    return p?.up === true && this.send(p, f)
  }

  /** Send a frame to every connected peer (membership gossip). */
  broadcast(f: Frame): void {
    for (const p of this.peers.values()) if (p.up) this.send(p, f)
  }

  peerDown(peer: string): void {
    const p = this.peers.get(peer)
    if (!p) return
    p.up = false
    p.helloIn = false
    p.blocked = false
    p.cursor.clear()
    p.pulls.clear()
    p.deferred.clear()
    p.pruned.clear()
    p.pruneOut.clear()
    // Origins we heard through this peer: every other peer may send them again (one will be preferred).
    this.relays.down(peer, this.peers.values())
    this.gossip.onDown(peer)
    if (!this.host.closed()) this.broadcastBeat()
  }

  drain(peer: string): void {
    const p = this.peers.get(peer)
    if (!p) return
    p.blocked = false
    void this.sender.pump(p)
  }

  inspect(): SiteProgress {
    const received: Record<string, number> = {}
    const applied: Record<string, number> = {}
    for (const s of this.streams.values()) {
      if (s.rv > 0) received[s.id] = s.rv
      if (s.av > 0) applied[s.id] = s.av
    }
    return { received, applied, idle: this.isIdle() }
  }

  /** Local work done, nothing being logged, and nothing left to send. */
  isIdle(): boolean {
    if (!this.host.isLocalIdle()) return false
    for (const s of this.streams.values()) if (s.accepted > s.rv) return false
    for (const p of this.peers.values()) {
      if (p.pumping) return false
      if (p.up && p.helloIn && !p.blocked && this.sender.hasSendable(p)) return false
    }
    return true
  }

  frame(peer: string, bytes: Uint8Array): void {
    if (this.host.closed() || this.host.failed()) return
    if (this.host.membership?.isRemoved(peer)) {
      // Removed for good: nothing it sends counts any more.
      this.host.network?.disconnect?.(peer)
      return
    }
    const cfg = this.peerConfig(peer)
    if (!cfg) return
    const p = this.link(peer)
    const now = this.host.wall.nowMs()
    if (p.faultyUntilMs > now) return
    p.lastSeenAt = now
    p.everSeen = true
    let f: Frame
    try {
      f = decodeFrame(bytes)
    } catch (e) {
      this.badInput(p, 'frame', (e as Error).message)
      return
    }
    // A peer configured otherwise exchanges nothing with us but hellos (its next one may agree).
    if (p.incompatible !== undefined && f.t !== 'hello') return
    switch (f.t) {
      case 'hello':
        if (f.v !== PROTOCOL_VERSION || f.site !== peer) {
          this.host.log.warn({ peer, site: f.site, version: f.v }, 'hello from an unexpected site or protocol version: ignored')
          return
        }
        if (this.refuseIncompatible(p, f.cfg)) return
        p.helloIn = true
        p.theirAccepts = f.accepts
        p.theirSends = f.sends
        if (!f.accepts) p.neverAccepts = true
        p.known = new Map(f.rv)
        p.cursor.clear()
        p.ups = new Set(f.ups)
        // A new first-hand upstream: tell the other peers now, not at the next heartbeat, so they
        // do not relay this peer's writes to us meanwhile (the beat carries only what changed).
        if (f.sends && cfg.receive) this.broadcastBeat()
        this.warnTrimmedFor(p)
        // A peer holding more of our own streams than we do: fetch them back (own-recovery.ts).
        this.recovery.claims(peer, f.rv)
        void this.sender.pump(p)
        return
      case 'beat': {
        let b
        try {
          b = decodeBeat(p.dec, f)
        } catch (e) {
          this.badInput(p, 'beat', (e as Error).message)
          return
        }
        for (const [s, q] of b.rv) if ((p.known.get(s) ?? 0) < q) p.known.set(s, q)
        p.ups = new Set(b.ups)
        p.pruned = new Set(b.prune)
        this.gossip.onBeat(peer, b.tree)
        this.recovery.claims(peer, [...b.rv])
        void this.sender.pump(p)
        return
      }
      case 'ack':
        for (const [s, q] of f.rv) if ((p.known.get(s) ?? 0) < q) p.known.set(s, q)
        for (const sid of p.pulls) if ((p.known.get(sid) ?? 0) >= (this.streams.get(sid)?.rv ?? 0)) p.pulls.delete(sid)
        return
      case 'pull': {
        // The peer lost part of its own stream (restored from a backup): send it back what we hold.
        if (!f.stream.startsWith(peer + '/')) {
          this.badInput(p, 'pull', `pull of stream ${f.stream}, which is not the peer's own`)
          return
        }
        const s = this.streams.get(f.stream)
        if (!s || s.rv <= f.have) return
        if (s.gc > f.have) {
          this.peerLog.warn(peer, 'pull-trimmed', { stream: f.stream, have: f.have, trimmedTo: s.gc }, 'a peer asks for entries of its own stream that this site has trimmed')
          return
        }
        p.pulls.add(f.stream)
        p.known.set(f.stream, f.have)
        p.cursor.set(f.stream, f.have)
        void this.sender.pump(p)
        return
      }
      case 'removed':
        this.host.membership?.received(peer, f.sites)
        return
      case 'bsreq':
        this.host.bootstrapSource?.request(peer, f.shard, f.after)
        return
      case 'bschunk':
        return // only a bootstrapping site asks for chunks (bootstrap.ts reads them before we start)
      case 'read':
        if (!p.helloIn) return
        void this.remote.onRequest(peer, f)
        return
      case 'read-res':
        this.remote.onResponse(peer, f)
        return
      case 'nack': {
        p.rewinds++
        p.known.set(f.stream, f.have)
        p.cursor.set(f.stream, f.have)
        void this.sender.pump(p)
        return
      }
      case 'writes': {
        if (!cfg.receive) return // one-way link: we do not take writes from this peer
        if (p.inboundDepth >= MAX_INBOUND_FRAMES) {
          this.host.log.warn({ peer }, 'inbound queue full: frame dropped')
          // The sender is nacked on the next gap, or at a beat if no later frame shows one (checkPeers).
          return
        }
        // Frames pipeline: acceptance (stream order, duplicates, gaps) is decided synchronously on
        // arrival, and a stream's log shard commits in FIFO order, so frames need not wait for each
        // other's fsync; concurrent ones share a group commit.
        p.inboundDepth++
        const done = this.receiveWrites(p, f.e).finally(() => {
          p.inboundDepth--
          this.host.workDone()
        })
        p.inbound = p.inbound.then(() => done)
        return
      }
    }
  }

  /** Configuration agreement: refuse a peer whose conflicts/scopes digest differs (logged once per reason). */
  private refuseIncompatible(p: PeerLink, theirs: string | undefined): boolean {
    const reason = digestMismatch(this.host.configDigest, theirs)
    if (theirs === undefined) this.peerLog.warn(p.id, 'no-config-digest', {}, 'a peer announces no configuration digest: its conflicts and scopes cannot be checked')
    if (reason === undefined) {
      p.incompatible = undefined
      return false
    }
    if (p.incompatible !== reason) this.host.log.error({ peer: p.id, reason }, 'peer refused: its configuration differs from this site\'s; no writes are exchanged with it')
    p.incompatible = reason
    p.helloIn = false
    p.cursor.clear()
    return true
  }

  private async receiveWrites(p: PeerLink, raw: Uint8Array[]): Promise<void> {
    if (this.host.closed() || this.host.failed()) return
    const groups = new Map<StreamState, Array<{ seq: number; bytes: Uint8Array; time: number; entry: WriteEntry }>>()
    const nacked = new Set<StreamId>()
    const refused = new Set<StreamId>()
    let prunedNow = false
    for (const rawBytes of raw) {
      let decoded: Array<{ entry: WriteEntry; bytes: Uint8Array }>
      try {
        if (rawBytes.length > MAX_ENTRY_BYTES) throw new CausewayError('INVALID_FRAME', 'entry too large')
        if (isStubRun(rawBytes)) decoded = decodeStubRun(rawBytes).map((e) => ({ entry: e, bytes: encodeEntry(e) }))
        else {
          const entry = decodeEntry(rawBytes, this.host.maxValueBytes)
          // decodeEntry validated every op value: reads trust what the site stored.
          decoded = [{ entry, bytes: rawBytes }]
        }
      } catch (e) {
        this.badInput(p, 'entry', (e as Error).message)
        continue
      }
      for (const d of decoded) {
        let { entry, bytes } = d
        // Our own stream: we are its source of truth, unless we are fetching entries we lost.
        if (entry.site === this.host.siteId && !this.streams.get(entry.stream)?.recovery) continue
        if (refused.has(entry.stream)) continue
        if ((p.known.get(entry.stream) ?? 0) < entry.seq) p.known.set(entry.stream, entry.seq)
        const s = this.streams.stream(entry.stream)
        if (entry.seq <= s.accepted) {
          // A duplicate (relays make these normal): this origin reaches us by another path, so ask
          // this peer to stop relaying it (Plumtree's prune); the first path to deliver stays eager.
          if (this.relays.duplicate(p, s.origin)) prunedNow = true
          continue
        }
        if (entry.holders?.includes(this.host.siteId)) {
          // A stub of a write this site must hold in full (relayed by a non-member): never take it in
          // place of the write. The stream waits for a member's copy; asked for again at heartbeats.
          refused.add(s.id)
          p.deferred.add(s.id)
          p.known.set(s.id, s.accepted)
          this.peerLog.warn(p.id, 'scope-stub', { stream: s.id, seq: entry.seq }, 'a peer relays only a stub of a write in one of our scopes: waiting for a member to send it')
          continue
        }
        if (entry.ops.length > 0 && !this.host.scopes.empty) {
          const holders = this.host.scopes.holdersOf(entry.ops.map((o) => o.key))
          if (holders !== undefined && !holders.includes(this.host.siteId)) {
            // A peer sent a write of a scope we are not in: keep only a stub (no key, no value stored).
            this.peerLog.warn(p.id, 'scope-full', { stream: s.id, seq: entry.seq }, 'a peer sent a write of a scope this site is not a member of: stored as a stub')
            entry = { stream: entry.stream, seq: entry.seq, time: entry.time, site: entry.site, deps: entry.deps, ops: [], holders: [...holders] }
            bytes = encodeEntry(entry)
          }
        }
        this.relays.accepted(p, s.origin)
        if (!this.host.clock.admits(entry.time)) {
          // Too far ahead of our clock: refused (no peer may move our clock past the skew bound).
          // Asked for again at heartbeats, so a peer whose clock is merely fast gets through later.
          refused.add(s.id)
          p.deferred.add(s.id)
          p.known.set(s.id, s.accepted)
          this.peerLog.warn(p.id, 'clock-skew', { stream: s.id, seq: entry.seq, aheadMs: timeToMs(entry.time) - this.host.wall.nowMs() }, "refused a write whose time is too far ahead of this site's clock")
          continue
        }
        if (entry.seq > s.accepted + 1) {
          if (!nacked.has(s.id)) {
            nacked.add(s.id)
            this.send(p, { t: 'nack', stream: s.id, have: s.accepted })
          }
          continue
        }
        s.accepted = entry.seq
        let g = groups.get(s)
        if (!g) groups.set(s, (g = []))
        g.push({ seq: entry.seq, bytes, time: entry.time, entry })
      }
    }
    if (prunedNow && p.up) this.sendBeat(p, this.rvMap(), new Set(this.upstreams()))
    if (groups.size === 0) return
    const acks: Vector = []
    await Promise.all(
      [...groups].map(async ([s, entries]) => {
        try {
          await this.streams.append(s, entries)
        } catch (e) {
          this.host.fail(e)
          return
        }
        for (const en of entries) this.streams.ringAdd(s, en.seq, en.bytes, en.entry)
        s.rv = Math.max(s.rv, entries[entries.length - 1]!.seq)
        if (s.origin === this.host.siteId) this.recovery.logged(s)
        acks.push([s.id, s.rv])
      }),
    )
    if (acks.length > 0 && p.up) this.send(p, { t: 'ack', rv: acks })
    this.host.kickApply()
    this.sender.pumpAll()
  }

  /** Heartbeat: writes refused for clock skew are asked for again; stale recoveries give up. */
  checkPeers(): void {
    this.recovery.tick()
    this.relays.tick(this.peers.values(), new Set(this.upstreams()), (p) => this.peerConfig(p.id)?.receive !== false, (p, stream, have) => this.send(p, { t: 'nack', stream, have }))
    for (const p of this.peers.values()) {
      if (p.deferred.size === 0 || !p.up) continue
      for (const sid of p.deferred) this.send(p, { t: 'nack', stream: sid, have: this.streams.get(sid)?.accepted ?? 0 })
      p.deferred.clear()
    }
  }

  /** A peer back after its horizon may need entries this site trimmed meanwhile: say so, loudly. */
  private warnTrimmedFor(p: PeerLink): void {
    if (!p.theirAccepts) return
    for (const s of this.streams.values()) {
      if (s.origin === p.id || s.gc === 0) continue
      const have = p.known.get(s.id) ?? 0
      if (have < s.gc && s.rv > have) {
        this.peerLog.warn(p.id, 'trimmed-for-peer', { stream: s.id, have, trimmedTo: s.gc }, 'a peer needs entries this site trimmed (it was away past offlineHorizonMs): bootstrap it into a new dir (docs/operations.md)')
        return
      }
    }
  }

  /** A frame or entry from `p` did not validate: logged (rate-limited); too many, and p is faulty. */
  private badInput(p: PeerLink, what: string, err: string): void {
    const now = this.host.wall.nowMs()
    if (now - p.badSinceMs > BAD_FRAME_WINDOW_MS) {
      p.badSinceMs = now
      p.badFrames = 0
    }
    p.badFrames++
    this.peerLog.warn(p.id, `bad-${what}`, { err, what }, 'dropped invalid input from a peer')
    if (p.badFrames >= MAX_BAD_FRAMES) this.markFaulty(p.id, `${p.badFrames} invalid frames within ${BAD_FRAME_WINDOW_MS} ms`)
  }

  /** Ignore a peer for a while and hang up on it (where the network can). */
  markFaulty(peer: string, why: string): void {
    const p = this.link(peer)
    this.host.log.error({ peer, why, cooldownMs: FAULTY_COOLDOWN_MS }, 'a faulty peer is disconnected and ignored for a while')
    p.faultyUntilMs = this.host.wall.nowMs() + FAULTY_COOLDOWN_MS
    p.badFrames = 0
    p.pulls.clear()
    p.deferred.clear()
    this.host.network?.disconnect?.(peer)
  }

  broadcastBeat(): void {
    const rv = this.rvMap()
    const ups = new Set(this.upstreams())
    for (const p of this.peers.values()) if (p.up) this.sendBeat(p, rv, ups)
  }

  private rvMap(): Map<string, number> {
    const rv = new Map<string, number>()
    for (const s of this.streams.values()) if (s.rv > 0) rv.set(s.id, s.rv)
    return rv
  }

  /** One connection's beat: the changes since its last one (its own encoder), and its own view of the tree. */
  private sendBeat(p: PeerLink, rv: ReadonlyMap<string, number>, ups: ReadonlySet<string>): void {
    this.send(p, { t: 'beat', ...encodeBeat(p.enc, { rv, ups, prune: new Set(p.pruneOut.keys()), tree: this.gossip.beatFor(p.id) }) })
  }

  /** status(): the peers part and pendingIn (peer-status.ts). */
  status(): SiteStatus {
    return siteStatus({
      siteId: this.host.siteId,
      configs: this.host.network?.peers() ?? [],
      nowMs: this.host.wall.nowMs(),
      removed: this.host.membership?.list() ?? [],
      peers: this.peers,
      streams: this.streams,
      expired: (site) => this.expired(site),
    })
  }
}

/** Names a beat may define: stream ids and site ids. */
function newDecoder(): LinkDecoder {
  return new LinkDecoder((n) => isStreamId(n) || isSiteId(n))
}
