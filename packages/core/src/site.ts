import type { IndexDefinition, Logger, OpenSiteOptions, ScanKeysOptions, ScanOptions, Session, SessionOptions, ShardDb, Site } from './api.js'
import { Applier } from './applier.js'
import { LamportClock } from './clock.js'
import type { KeyState, Resolver } from './conflict.js'
import { CausalContext, type Dot } from './context.js'
import type { WriteEntry, WriteEntryOp } from './entry.js'
import { CausewayError } from './errors.js'
import { CLOSE_DRAIN_MS, COLLECT_EVERY_BEATS, IDLE_TIMEOUT_MS_DEFAULT, RECOVER_IDLE_TIMEOUT_MS, TRIM_EVERY_BEATS } from './limits.js'
import type { NetworkAdapter } from './network.js'
import { openShardDbs } from './open.js'
import { validateOptions, type ValidOptions } from './options.js'
import { BootstrapClient, needsBootstrap, runBootstrap } from './bootstrap.js'
import { BootstrapSource } from './bootstrap-source.js'
import { Membership } from './membership.js'
import { Replication } from './replication.js'
import { Scans } from './scan.js'
import type { Scopes } from './scopes.js'
import { SessionImpl } from './session.js'
import { Shard, type ShardHost } from './shard.js'
import { Stability } from './stability.js'
import { appliesFromLog, Streams } from './streams.js'
import type { Clock, ConflictMode, SiteStatus, Version } from './types.js'

export { cmpUtf8 } from './scan.js'

/**
 * The Site facade: wires the shards, the streams, the applier, the peer protocol, stability and
 * scans together, and holds the site's lifecycle (open, heartbeat, fail, close).
 *
 *   sessions ─ localWrite ─> shard queue ─> streams (ring, log) ─> replication (pump to peers)
 *   peers ─ frame ─> replication ─> streams (log) ─> applier (rounds) ─> shards (staged, installed)
 */

/** Open a site. Validates, opens the shards, recovers, then joins the network. */
export async function createSite(options: OpenSiteOptions): Promise<Site> {
  const o = validateOptions(options)
  const dbs = await openShardDbs(o)
  const site = new SiteImpl(o, dbs)
  try {
    await site.recover()
    await site.join()
  } catch (e) {
    await site.close().catch(() => {})
    throw e
  }
  return site
}

class SiteImpl implements Site {
  readonly id: string
  readonly siteId: string
  readonly clock: LamportClock
  readonly fsync: boolean
  readonly modeOf: Resolver
  readonly log: Logger
  readonly wall: Clock
  /** ttl rules, longest prefix first. */
  readonly ttlRules: Array<[string, number]>
  readonly network: NetworkAdapter | undefined
  private readonly shards: Shard[]
  private readonly streams: Streams
  private readonly applier: Applier
  private readonly replication: Replication
  private readonly stability: Stability
  private readonly scans: Scans
  private readonly membership: Membership
  private closed = false
  private failed: Error | undefined
  private readonly failureListeners = new Set<(err: Error) => void>()
  private heartbeat: (() => void) | undefined
  /** idle() / close() waits, woken when some work finishes (no polling). */
  private workWaiters: Array<() => void> = []
  private beats = 0

  constructor(private readonly o: ValidOptions, dbs: ShardDb[]) {
    this.id = o.id
    this.siteId = o.id
    this.fsync = o.fsync
    this.modeOf = o.resolver
    this.log = o.logger
    this.wall = o.clock
    this.network = o.network
    this.clock = new LamportClock(o.id, o.clock, 0, o.maxClockSkewMs)
    this.ttlRules = Object.entries(o.ttl).sort((a, b) => b[0].length - a[0].length)
    const shardHost: ShardHost = {
      siteId: this.siteId,
      clock: this.clock,
      fsync: this.fsync,
      modeOf: this.modeOf,
      indexesFor: (key) => this.scans.indexesFor(key),
      allocSeq: (shard) => this.streams.allocSeq(shard),
      releaseSeq: (shard, seq) => this.streams.releaseSeq(shard, seq),
      workDone: () => this.workDone(),
    }
    this.shards = dbs.map((db, i) => new Shard(i, db, shardHost, o.cacheEntries))
    this.streams = new Streams(this.id, this.shards)
    this.applier = new Applier(
      {
        siteId: this.id,
        clock: this.clock,
        maxValueBytes: o.maxValueBytes,
        log: this.log,
        stopped: () => this.closed || this.failed !== undefined,
        fail: (e) => this.fail(e),
        ownApplied: (s) => this.replication.recovery.check(s),
        timers: o.timers,
        workDone: () => this.workDone(),
      },
      this.streams,
      this.shards,
    )
    this.membership = new Membership({
      siteId: this.id,
      network: this.network,
      log: this.log,
      shard: this.shards[0]!,
      broadcast: (f) => this.replication.broadcast(f),
      send: (peer, f) => void this.replication.sendTo(peer, f),
    })
    this.stability = new Stability(
      { siteId: this.id, network: this.network, clock: this.clock, peerView: (site) => this.replication.peerView(site), isRemoved: (site) => this.membership.isRemoved(site), isExpired: (site) => this.replication.expired(site) },
      this.streams,
      this.shards,
    )
    this.replication = new Replication(
      {
        siteId: this.id,
        network: this.network,
        maxValueBytes: o.maxValueBytes,
        log: this.log,
        wall: this.wall,
        timers: o.timers,
        clock: this.clock,
        shardCount: this.shards.length,
        recoveryTimeoutMs: o.recoveryTimeoutMs,
        ttlRules: this.ttlRules,
        membership: this.membership,
        offlineHorizonMs: o.offlineHorizonMs,
        bootstrapSource: new BootstrapSource(
          {
            log: this.log,
            maxFrameBytes: this.network?.maxFrameBytes,
            appliedVector: () => [...this.streams.values()].filter((s) => s.av > 0).map((s) => [s.id, s.av] as [string, number]),
            readStates: (keys) => this.readStates(keys),
            send: (peer, f) => this.replication.sendTo(peer, f),
          },
          this.shards,
        ),
        configDigest: o.configDigest,
        scopes: o.scopes,
        waitForDeps: (deps, ms) => this.waitForDeps(deps, ms),
        readStates: (keys) => this.readStates(keys),
        closed: () => this.closed,
        failed: () => this.failed !== undefined,
        fail: (e) => this.fail(e),
        kickApply: () => this.applier.kickApply(),
        isLocalIdle: () => this.isLocalIdle(),
        workDone: () => this.workDone(),
      },
      this.streams,
      this.stability,
    )
    this.scans = new Scans({ checkOpen: () => this.checkOpen(), readStates: (keys) => this.readStates(keys) }, this.shards)
  }

  get scopes(): Scopes {
    return this.o.scopes
  }

  /** Read keys held at other sites once `deps` are visible there (remote-read.ts). Internal: sessions call it. */
  remoteRead(keys: string[], deps: Dot[], waitMs: number): Promise<Map<string, KeyState>> {
    this.checkOpen()
    return this.replication.remote.read(keys, deps, waitMs)
  }

  get maxValueBytes(): number {
    return this.o.maxValueBytes
  }

  shardOf(key: string): number {
    return this.streams.shardOf(key)
  }

  // ---------------------------------------------------------------- recovery

  async recover(): Promise<void> {
    await this.membership.load()
    for (const entry of await this.streams.recover(this.clock, this.o.maxValueBytes)) this.applier.addLocal(entry)
    if (this.applier.busy || [...this.streams.values()].some((s) => s.next <= s.rv)) {
      this.applier.kickApply()
      await this.idle(RECOVER_IDLE_TIMEOUT_MS)
    }
  }

  async join(): Promise<void> {
    if (this.o.bootstrap === undefined && (await this.shards[0]!.readMeta()).bootstrap === 0) {
      // Half a snapshot is no causal cut: never serve it.
      throw new CausewayError('BOOTSTRAP_FAILED', `site ${this.id} holds an unfinished bootstrap: reopen it with the bootstrap option`)
    }
    if (!this.o.network) return
    if (this.o.bootstrap !== undefined && (await needsBootstrap(this.shards, this.streams))) return this.joinByBootstrap(this.o.network, this.o.bootstrap)
    await this.o.network.start(this.id, this.replication)
    this.startHeartbeat()
  }

  private startHeartbeat(): void {
    // Not keepAlive: heartbeats alone never hold a process open.
    this.heartbeat = this.o.timers.every(this.o.heartbeatMs, () => this.onHeartbeat())
  }

  /** Copy a snapshot from `source` (bootstrap.ts), then replicate from its vector. */
  private joinByBootstrap(network: NetworkAdapter, source: string): Promise<void> {
    const host = { siteId: this.id, log: this.log, wall: this.wall, network, source, deadlineMs: this.wall.nowMs() + this.o.bootstrapTimeoutMs, maxValueBytes: this.o.maxValueBytes, clock: this.clock, shards: this.shards, streams: this.streams, timers: this.o.timers, closed: () => this.closed }
    return runBootstrap(new BootstrapClient(host, this.replication), () => this.startHeartbeat())
  }

  // ---------------------------------------------------------------- local writes

  /** Throws CLOSED (or the storage failure that stopped the site). Internal: sessions call it. */
  checkOpen(): void {
    if (this.closed) throw new CausewayError('CLOSED', `site ${this.id} is closed`)
    if (this.failed) throw new CausewayError('STORAGE_ERROR', `site ${this.id} stopped after a storage failure`, { cause: this.failed })
  }

  /** Commit a local write (one or more ops). Resolves once durable and visible locally. */
  async localWrite(ops: WriteEntryOp[], ctx: CausalContext): Promise<{ version: Version; dot: Dot }> {
    this.checkOpen()
    if (!this.clock.admits(ctx.maxTime)) throw this.clock.skewError(ctx.maxTime)
    const deps = ctx.depList()
    const atLeast = ctx.maxTime + 1
    // One shard: the write and its log entry commit in one batch and are visible at once.
    // Several shards: log at the coordinator shard, then apply everywhere in one visibility round.
    const shardOfOp = ops.map((op) => this.shardOf(op.key))
    const single = shardOfOp.every((d) => d === shardOfOp[0])
    const sh = this.shards[shardOfOp[0]!]!
    // The coordinator's own ops are staged with the log entry (one batch less per multi-shard write).
    const stageOps = single ? undefined : ops.filter((_, i) => shardOfOp[i] === sh.index)
    // A peer holds more of this shard's stream than we do: write on only after fetching it back.
    const recovering = this.replication.recovery.ready(this.streams.get(`${this.id}/${sh.index}`))
    if (recovering) {
      await recovering
      this.checkOpen()
    }
    await sh.admit()
    const { entry, bytes } = await new Promise<{ entry: WriteEntry; bytes: Uint8Array }>((resolve, reject) =>
      sh.enqueue({ kind: 'local', ops, deps, atLeastTime: atLeast, logOnly: !single, stageOps, resolve, reject }),
    )
    const s = this.streams.stream(entry.stream)
    s.rv = s.accepted = entry.seq
    s.next = entry.seq + 1
    this.streams.ringAdd(s, entry.seq, bytes, entry)
    if (single) {
      this.streams.markApplied(s, entry.seq)
      this.applier.afterApplied([entry])
    }
    this.replication.pumpAll()
    if (!single) {
      await new Promise<void>((resolve, reject) => {
        this.applier.addLocal(entry, resolve, reject, sh.index)
        this.applier.kickApply()
      })
    }
    return { version: { time: entry.time, site: entry.site }, dot: [entry.stream, entry.seq] }
  }

  /** Wait until every dependency is applied here, up to waitMs. */
  waitForDeps(deps: Dot[], waitMs: number): Promise<boolean> {
    return this.applier.waitForDeps(deps, waitMs)
  }

  private fail(e: unknown): void {
    if (this.failed) return
    this.failed = e instanceof Error ? e : new Error(String(e))
    this.log.error({ err: e }, 'site stopped after a storage failure')
    // Stop replicating: a site that cannot write must not acknowledge anything.
    void this.o.network?.stop().catch(() => {})
    for (const l of this.failureListeners) {
      try {
        l(this.failed)
      } catch (err) {
        this.log.warn({ err }, 'onFailure listener threw')
      }
    }
  }

  onFailure(listener: (err: Error) => void): () => void {
    if (this.failed) {
      listener(this.failed)
      return () => {}
    }
    this.failureListeners.add(listener)
    return () => this.failureListeners.delete(listener)
  }

  /**
   * Origins of unmet dependencies that can never be met here: a site this one has no stream from
   * and no link to, or this site itself beyond the sequence numbers it ever assigned. Such a
   * context comes from another deployment (or from before a restore), so waiting cannot help.
   */
  unknownOrigins(deps: Dot[]): string[] {
    const peers = new Set((this.o.network?.peers() ?? []).map((p) => p.site))
    const origins = new Set<string>()
    for (const s of this.streams.values()) origins.add(s.origin)
    const out = new Set<string>()
    for (const [sid, q] of deps) {
      if (this.streams.av(sid) >= q) continue
      const origin = sid.slice(0, sid.indexOf('/'))
      if (origin === this.id) {
        const shard = Number(sid.slice(sid.indexOf('/') + 1))
        if (!(shard < this.shards.length) || q > (this.streams.get(sid)?.issued ?? 0)) out.add(origin)
      } else if (!peers.has(origin) && !origins.has(origin)) out.add(origin)
    }
    return [...out]
  }

  // ---------------------------------------------------------------- reads

  /** A causally consistent snapshot of committed states (one synchronous step after loading). */
  async readStates(keys: string[]): Promise<Map<string, KeyState>> {
    this.checkOpen()
    const byShard = new Map<number, string[]>()
    for (const k of keys) {
      const d = this.shardOf(k)
      let l = byShard.get(d)
      if (!l) byShard.set(d, (l = []))
      l.push(k)
    }
    const used = [...byShard.keys()].map((d) => this.shards[d]!)
    for (const sh of used) sh.pin()
    try {
      await Promise.all([...byShard].map(([d, ks]) => this.shards[d]!.load(ks)))
      const out = new Map<string, KeyState>()
      for (const k of keys) out.set(k, this.shards[this.shardOf(k)]!.peek(k))
      return out
    } catch (e) {
      if (e instanceof CausewayError) throw e
      throw new CausewayError('STORAGE_ERROR', 'read failed', { cause: e })
    } finally {
      for (const sh of used) sh.unpin()
    }
  }

  // ---------------------------------------------------------------- heartbeat

  private onHeartbeat(): void {
    if (this.closed || this.failed) return
    this.replication.checkPeers()
    this.stability.tick()
    this.replication.broadcastBeat()
    this.replication.pumpAll()
    // Safety net: received writes still pending get another apply attempt every heartbeat.
    if (!this.applier.running) for (const s of this.streams.values()) if (appliesFromLog(s)) {
      this.applier.kickApply()
      break
    }
    if (++this.beats % TRIM_EVERY_BEATS === 0) void this.stability.trimLogs().catch((e) => this.log.warn({ err: e }, 'log trim failed'))
    if (this.beats % COLLECT_EVERY_BEATS === 0) void this.stability.collectTombstones().catch((e) => this.log.warn({ err: e }, 'tombstone collection failed'))
  }

  // ---------------------------------------------------------------- public API

  session(options?: SessionOptions): Session {
    this.checkOpen()
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new CausewayError('INVALID_ARGUMENT', 'session options must be an object')
    const waitMs = options?.waitMs ?? 0
    if (typeof waitMs !== 'number' || !(waitMs >= 0)) throw new CausewayError('INVALID_ARGUMENT', 'waitMs must be a number >= 0')
    const ctx = options?.context === undefined ? new CausalContext() : CausalContext.decode(options.context)
    if (!this.clock.admits(ctx.maxTime)) {
      // A forged token (or one from a site whose clock is far ahead) must not move our clock.
      const err = this.clock.skewError(ctx.maxTime)
      this.log.warn({ aheadMs: err.details.aheadMs }, "refused a context token whose time is too far ahead of this site's clock")
      throw err
    }
    return new SessionImpl(this, ctx, options?.context !== undefined, waitMs)
  }

  status(): SiteStatus {
    return this.replication.status()
  }

  /** Run a tombstone collection pass now (normally every 10 heartbeats). */
  async gc(): Promise<void> {
    this.checkOpen()
    await this.stability.collectTombstones()
  }

  async removeMember(id: string): Promise<void> {
    this.checkOpen()
    await this.membership.remove(id)
  }

  conflictMode(key: string): ConflictMode {
    return this.modeOf(key)
  }

  tick(): Version {
    this.checkOpen()
    return this.clock.tick()
  }

  onApplied(listener: (keys: string[], origin: string) => void): () => void {
    return this.applier.onApplied(listener)
  }

  async idle(timeoutMs = IDLE_TIMEOUT_MS_DEFAULT): Promise<void> {
    const deadline = this.wall.nowMs() + timeoutMs
    while (!this.isLocalIdle()) {
      if (this.wall.nowMs() > deadline) throw new CausewayError('TIMEOUT', `site ${this.id} did not become idle in ${timeoutMs} ms`)
      await this.nextWorkDone(deadline - this.wall.nowMs() + 1)
    }
  }

  /** Some work finished (apply loop, shard queue, inbound frame): wake idle()/close() waits. */
  private workDone(): void {
    if (this.workWaiters.length > 0) for (const wake of this.workWaiters.splice(0)) wake()
  }

  /** Resolves at the next workDone(), or after timeoutMs. */
  private nextWorkDone(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancel = this.o.timers.after(Math.max(0, timeoutMs), resolve, { keepAlive: true })
      this.workWaiters.push(() => {
        cancel()
        resolve()
      })
    })
  }

  private isLocalIdle(): boolean {
    if (this.applier.busy) return false
    for (const sh of this.shards) if (sh.busy) return false
    for (const s of this.streams.values()) if (appliesFromLog(s)) return false
    if (this.replication.inboundBusy()) return false
    return true
  }

  ensureIndex(def: IndexDefinition): Promise<void> {
    return this.scans.ensureIndex(def)
  }

  scanIndex(name: string, options: ScanOptions = {}): AsyncIterable<{ term: string; key: string }> {
    return this.scans.scanIndex(name, options)
  }

  scanKeys(prefix: string, options: ScanKeysOptions = {}): AsyncIterable<string> {
    return this.scans.scanKeys(prefix, options)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.heartbeat?.()
    this.applier.releaseWaiters()
    this.replication.remote.close()
    await this.o.network?.stop().catch((e) => this.log.warn({ err: e }, 'network stop failed'))
    // Let queued writes finish so nothing acknowledged-in-flight is torn.
    const deadline = this.wall.nowMs() + CLOSE_DRAIN_MS
    while ((this.applier.running || this.shards.some((s) => s.busy)) && this.wall.nowMs() < deadline) {
      await this.nextWorkDone(deadline - this.wall.nowMs())
    }
    await this.replication.settleInbound()
    await Promise.allSettled(this.shards.map((s) => s.close()))
  }
}
