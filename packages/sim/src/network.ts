/**
 * In-process simulated network. Each pair of started sites that allow each other has one link;
 * each link direction is a FIFO queue of copied frames drained by a single timer, so tens of
 * thousands of frames per second cost one timer per busy direction, not one per frame.
 *
 * Semantics (see types.ts for the public surface):
 * - A link is up when both endpoints are started, allow each other, are not in different partition
 *   groups, are not cut, and the network is open. peerUp/peerDown are delivered on a microtask, in
 *   the order the transitions happened, never re-entrantly inside start()/partition()/...
 * - A link going down drops every frame in flight on it (both directions).
 * - Delivery time = max(previous delivery time on the direction, now + latency + U[0, jitter)).
 * - send/receive flags are engine policy: reported by peers(), frames flow both ways regardless.
 */
import { CausewayError, isSiteId, overlayGraph } from '@causeway/core'
import { systemClock, systemTimers } from '@causeway/core'
import type { Clock, NetworkHandler, PeerConfig, SiteProgress, Timers } from '@causeway/core'
import { FrameTrace } from './trace.js'
import { VirtualTime } from './virtual.js'
import { createRandom, type RandomFn } from './random.js'
import type {
  LatencyFn,
  SimAdapter,
  SimAdapterOptions,
  SimLinkStats,
  SimNetwork,
  SimNetworkOptions,
  SimNetworkStats,
  SimPeerOptions,
} from './types.js'

const DEFAULT_HIGH_WATER_BYTES = 1024 * 1024
const DEFAULT_SETTLE_TIMEOUT_MS = 30_000
const DEFAULT_SETTLE_POLL_MS = 5
const DEFAULT_SEED = 0x5eed
/** Frames delivered per timer callback before yielding, so one hot link cannot starve the loop. */
const MAX_FRAMES_PER_TICK = 4096

type EndpointState = 'created' | 'started' | 'stopped'
type HandlerCallback = 'peerUp' | 'peerDown' | 'frame' | 'drain'

/** How long a link stays down after a site hangs up on its peer. */
const HANG_UP_MS = 1000

function invalidOptions(message: string): CausewayError {
  return new CausewayError('INVALID_OPTIONS', message)
}

function isNonNegativeFinite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0
}

function peerConfig(siteId: string, p: SimPeerOptions): PeerConfig {
  if (p === null || typeof p !== 'object') throw invalidOptions('a peer entry must be an object')
  if (!isSiteId(p.site)) throw invalidOptions(`invalid peer site id ${JSON.stringify(p.site)}`)
  if (p.site === siteId) throw invalidOptions(`site ${siteId} lists itself as a peer`)
  if (p.send !== undefined && typeof p.send !== 'boolean') throw invalidOptions('peer.send must be a boolean')
  if (p.receive !== undefined && typeof p.receive !== 'boolean') throw invalidOptions('peer.receive must be a boolean')
  return { site: p.site, send: p.send ?? true, receive: p.receive ?? true }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`
}

interface Timer {
  handle: unknown
  immediate: boolean
  /** Set for a virtual-time timer. */
  cancel?: () => void
}

function clearTimer(t: Timer): void {
  if (t.cancel !== undefined) t.cancel()
  else if (t.immediate) clearImmediate(t.handle as NodeJS.Immediate)
  else clearTimeout(t.handle as NodeJS.Timeout)
}

/** Where the virtual clock starts (2026-01-01T00:00:00Z): Lamport times look like wall-clock ones. */
const DEFAULT_VIRTUAL_START_MS = 1_767_225_600_000

class Endpoint {
  state: EndpointState = 'created'
  handler: NetworkHandler | undefined
  /** Peers removed with removePeer() from the default mesh. */
  readonly excluded = new Set<string>()
  constructor(
    readonly siteId: string,
    /** undefined: talks to every site; else the allow-list with directions. */
    readonly allow: Map<string, PeerConfig> | undefined,
  ) {}

  allows(peer: string): boolean {
    return !this.excluded.has(peer) && (this.allow === undefined || this.allow.has(peer))
  }

  config(peer: string): PeerConfig | undefined {
    if (this.excluded.has(peer)) return undefined
    if (this.allow === undefined) return { site: peer, send: true, receive: true }
    return this.allow.get(peer)
  }
}

/** One direction of a link: a FIFO of frames with their delivery deadlines. */
class Direction {
  frames: Uint8Array[] = []
  deliverAtMs: number[] = []
  head = 0
  queuedBytes = 0
  lastDeliverAtMs = -Infinity
  timer: Timer | undefined
  needsDrain = false
  readonly stats: SimLinkStats = { frames: 0, bytes: 0 }
  constructor(
    readonly from: string,
    readonly to: string,
  ) {}

  get length(): number {
    return this.frames.length - this.head
  }
}

class Link {
  up = false
  epoch = 0
  /** The endpoints the link was brought up with (a restart creates a new epoch with new ones). */
  ends: Map<string, Endpoint> = new Map()
  readonly dirs: Map<string, Direction>
  constructor(
    readonly a: string,
    readonly b: string,
  ) {
    this.dirs = new Map([
      [a, new Direction(a, b)],
      [b, new Direction(b, a)],
    ])
  }
}

interface SettleWaiter {
  reject(e: unknown): void
  pollTimer: ReturnType<typeof setTimeout> | undefined
  timeoutTimer: ReturnType<typeof setTimeout> | undefined
}

interface PendingEvent {
  ep: Endpoint
  kind: 'peerUp' | 'peerDown'
  peer: string
}

class SimNetworkImpl implements SimNetwork {
  private closed = false
  private readonly endpoints = new Map<string, Endpoint>()
  private readonly known = new Set<string>()
  /** `known` sorted, cached: the engine asks for its peers on every pump. */
  private sortedKnown: string[] | undefined
  /** The overlay of the default mesh with `degree` (recomputed when sites join). */
  private overlay: Map<string, Set<string>> | undefined
  private readonly degree: number | undefined
  private readonly links = new Map<string, Link>()
  private readonly partitionGroup = new Map<string, number>()
  private readonly cuts = new Set<string>()
  /** Pairs a site hung up on (disconnect()): down until the timer brings them back. */
  private readonly hungUp = new Set<string>()
  private readonly linkLatencyMs = new Map<string, number>()
  private latency: number | LatencyFn
  private jitterMs: number
  private readonly random: RandomFn
  private readonly highWaterBytes: number
  private readonly maxQueuedBytes: number
  private readonly settleTimeoutMs: number
  private readonly settlePollMs: number
  private readonly deliveryClock: Clock
  /** Set in virtual-time mode: the only source of time and timers of the run. */
  private readonly vt: VirtualTime | undefined
  readonly clock: Clock
  readonly timers: Timers
  private readonly frameTrace = new FrameTrace()
  private readonly tracing: boolean
  private readonly onHandlerError: NonNullable<SimNetworkOptions['onHandlerError']>
  private events: PendingEvent[] = []
  private flushScheduled = false
  private readonly waiters = new Set<SettleWaiter>()
  private readonly perLink = new Map<string, SimLinkStats>()
  private totals = { frames: 0, bytes: 0 }
  private delivered: SimLinkStats = { frames: 0, bytes: 0 }
  private dropped: SimLinkStats = { frames: 0, bytes: 0 }

  constructor(options: SimNetworkOptions) {
    const latency = options.latencyMs ?? 0
    if (typeof latency !== 'function' && !isNonNegativeFinite(latency)) {
      throw invalidOptions('latencyMs must be a finite number >= 0 or a function (from, to) => ms')
    }
    const jitterMs = options.jitterMs ?? 0
    if (!isNonNegativeFinite(jitterMs)) throw invalidOptions('jitterMs must be a finite number >= 0')
    if (options.degree !== undefined && (!Number.isInteger(options.degree) || options.degree < 2)) throw invalidOptions('degree must be an integer >= 2')
    this.degree = options.degree
    const seed = options.seed ?? DEFAULT_SEED
    if (typeof seed !== 'number' || !Number.isFinite(seed)) throw invalidOptions('seed must be a finite number')
    const highWaterBytes = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES
    if (!Number.isSafeInteger(highWaterBytes) || highWaterBytes <= 0) {
      throw invalidOptions('highWaterBytes must be a positive integer')
    }
    const maxQueuedBytes = options.maxQueuedBytes ?? highWaterBytes * 64
    if (!Number.isSafeInteger(maxQueuedBytes) || maxQueuedBytes < highWaterBytes) {
      throw invalidOptions('maxQueuedBytes must be an integer >= highWaterBytes')
    }
    const settleTimeoutMs = options.settleTimeoutMs ?? DEFAULT_SETTLE_TIMEOUT_MS
    if (!isNonNegativeFinite(settleTimeoutMs)) throw invalidOptions('settleTimeoutMs must be a finite number >= 0')
    const settlePollMs = options.settlePollMs ?? DEFAULT_SETTLE_POLL_MS
    if (!isNonNegativeFinite(settlePollMs) || settlePollMs === 0) {
      throw invalidOptions('settlePollMs must be a finite number > 0')
    }
    if (options.clock !== undefined && typeof options.clock?.nowMs !== 'function') {
      throw invalidOptions('clock must have a nowMs() method')
    }
    if (options.onHandlerError !== undefined && typeof options.onHandlerError !== 'function') {
      throw invalidOptions('onHandlerError must be a function')
    }
    this.latency = latency
    this.jitterMs = jitterMs
    this.random = createRandom(seed)
    this.highWaterBytes = highWaterBytes
    this.maxQueuedBytes = maxQueuedBytes
    this.settleTimeoutMs = settleTimeoutMs
    this.settlePollMs = settlePollMs
    // performance.now is monotonic (a wall-clock jump must not stall a link) and faked by vitest.
    if (options.virtualTime !== undefined && typeof options.virtualTime !== 'boolean') throw invalidOptions('virtualTime must be a boolean')
    const startMs = options.virtualStartMs ?? DEFAULT_VIRTUAL_START_MS
    if (!isNonNegativeFinite(startMs)) throw invalidOptions('virtualStartMs must be a finite number >= 0')
    if (options.virtualTime === true) {
      if (options.clock !== undefined) throw invalidOptions('clock and virtualTime exclude each other (virtual time is the clock)')
      this.vt = new VirtualTime(startMs, (e) => queueMicrotask(() => {
        throw e
      }))
      this.deliveryClock = this.vt
      this.clock = this.vt
      this.timers = this.vt
    } else {
      this.vt = undefined
      this.deliveryClock = options.clock ?? { nowMs: () => globalThis.performance.now() }
      this.clock = systemClock
      this.timers = systemTimers
    }
    if (options.trace !== undefined && typeof options.trace !== 'boolean') throw invalidOptions('trace must be a boolean')
    this.tracing = options.trace ?? this.vt !== undefined
    this.onHandlerError =
      options.onHandlerError ??
      ((error) => {
        queueMicrotask(() => {
          throw error
        })
      })
  }

  // ---- sites ---------------------------------------------------------------------------------

  adapter(siteId: string, options: SimAdapterOptions = {}): SimAdapter {
    this.assertOpen()
    if (!isSiteId(siteId)) throw invalidOptions(`invalid site id ${JSON.stringify(siteId)}`)
    if (options === null || typeof options !== 'object') throw invalidOptions('adapter options must be an object')
    let allow: Map<string, PeerConfig> | undefined
    if (options.peers !== undefined) {
      if (!Array.isArray(options.peers)) throw invalidOptions('peers must be an array')
      allow = new Map()
      for (const p of options.peers) {
        const cfg = peerConfig(siteId, p)
        if (allow.has(cfg.site)) throw invalidOptions(`peer ${cfg.site} listed twice`)
        allow.set(cfg.site, cfg)
      }
    }
    const existing = this.endpoints.get(siteId)
    if (existing !== undefined && existing.state === 'started') {
      throw invalidOptions(`site ${siteId} is already attached to this network (stop its adapter first)`)
    }
    const ep = new Endpoint(siteId, allow)
    // An adapter created but never started is simply replaced (e.g. openSite rejected its options).
    if (existing !== undefined && existing.state === 'created') existing.state = 'stopped'
    this.endpoints.set(siteId, ep)
    if (!this.known.has(siteId)) {
      this.known.add(siteId)
      this.sortedKnown = undefined
      this.overlay = undefined
    }
    return this.makeAdapter(ep)
  }

  private makeAdapter(ep: Endpoint): SimAdapter {
    return {
      siteId: ep.siteId,
      start: async (siteId: string, handler: NetworkHandler) => {
        this.assertOpen()
        if (siteId !== ep.siteId) throw invalidOptions(`adapter of site ${ep.siteId} started as ${String(siteId)}`)
        if (ep.state !== 'created') throw invalidOptions(`adapter of site ${ep.siteId} already ${ep.state}`)
        if (this.endpoints.get(ep.siteId) !== ep) throw invalidOptions(`adapter of site ${ep.siteId} was replaced`)
        for (const m of ['peerUp', 'peerDown', 'frame', 'drain', 'inspect'] as const) {
          if (typeof handler?.[m] !== 'function') throw invalidOptions(`handler.${m} must be a function`)
        }
        ep.handler = handler
        ep.state = 'started'
        this.refreshLinks()
      },
      peers: () => this.peersOf(ep),
      addPeer: (peer: SimPeerOptions) => this.addPeer(ep, peer),
      removePeer: (site: string) => this.removePeer(ep, site),
      send: (peer: string, bytes: Uint8Array) => this.send(ep, peer, bytes),
      connected: (peer: string) => {
        const link = this.links.get(pairKey(ep.siteId, peer))
        return link !== undefined && link.up && link.ends.get(ep.siteId) === ep
      },
      disconnect: (peer: string) => this.hangUp(ep.siteId, peer),
      stop: async () => {
        if (ep.state === 'stopped') return
        ep.state = 'stopped'
        this.refreshLinks()
      },
    }
  }

  private addPeer(ep: Endpoint, p: SimPeerOptions): void {
    this.assertOpen()
    const cfg = peerConfig(ep.siteId, p)
    ep.excluded.delete(cfg.site)
    ep.allow?.set(cfg.site, cfg)
    if (!this.known.has(cfg.site)) {
      this.known.add(cfg.site)
      this.sortedKnown = undefined
      this.overlay = undefined
    }
    this.refreshLinks()
  }

  private removePeer(ep: Endpoint, site: string): void {
    this.assertOpen()
    if (!isSiteId(site)) throw invalidOptions(`invalid peer site id ${JSON.stringify(site)}`)
    if (ep.allow !== undefined) ep.allow.delete(site)
    else ep.excluded.add(site)
    this.refreshLinks()
  }

  private peersOf(ep: Endpoint): PeerConfig[] {
    if (ep.allow !== undefined) return [...ep.allow.values()].map((p) => ({ ...p }))
    const out: PeerConfig[] = []
    // Sites that exclude this one are left out: the engine must not queue writes for a peer it can
    // never reach. Stopped sites stay listed: they may restart and still need our writes.
    this.sortedKnown ??= [...this.known].sort()
    if (this.degree !== undefined) this.overlay ??= overlayGraph(this.sortedKnown, this.degree)
    const mine = this.overlay?.get(ep.siteId)
    for (const site of this.sortedKnown) {
      if (site === ep.siteId || ep.excluded.has(site)) continue
      if (mine !== undefined && !mine.has(site)) continue
      const other = this.endpoints.get(site)
      if (other !== undefined && !other.allows(ep.siteId)) continue
      out.push({ site, send: true, receive: true })
    }
    return out
  }

  sites(): string[] {
    return [...this.known].sort()
  }

  // ---- topology ------------------------------------------------------------------------------

  partition(...groups: string[][]): void {
    this.assertOpen()
    const next = new Map<string, number>()
    groups.forEach((group, i) => {
      if (!Array.isArray(group)) throw new CausewayError('INVALID_ARGUMENT', 'partition groups must be arrays of site ids')
      for (const site of group) {
        if (typeof site !== 'string') throw new CausewayError('INVALID_ARGUMENT', 'partition groups must be arrays of site ids')
        if (next.has(site)) throw new CausewayError('INVALID_ARGUMENT', `site ${site} is in two partition groups`)
        next.set(site, i)
      }
    })
    this.partitionGroup.clear()
    for (const [k, v] of next) this.partitionGroup.set(k, v)
    this.refreshLinks()
  }

  /** A site hangs up on a peer: the link goes down and comes back after HANG_UP_MS (the peer may redial). */
  private hangUp(a: string, b: string): void {
    if (this.closed || typeof b !== 'string') return
    const key = pairKey(a, b)
    if (this.hungUp.has(key)) return
    this.hungUp.add(key)
    this.refreshLinks()
    this.timers.after(HANG_UP_MS, () => {
      this.hungUp.delete(key)
      if (!this.closed) this.refreshLinks()
    })
  }

  heal(): void {
    this.assertOpen()
    this.partitionGroup.clear()
    this.cuts.clear()
    this.refreshLinks()
  }

  cut(a: string, b: string): void {
    this.assertOpen()
    this.checkPair(a, b)
    this.cuts.add(pairKey(a, b))
    this.refreshLinks()
  }

  restore(a: string, b: string): void {
    this.assertOpen()
    this.checkPair(a, b)
    this.cuts.delete(pairKey(a, b))
    this.refreshLinks()
  }

  connected(a: string, b: string): boolean {
    return this.links.get(pairKey(a, b))?.up ?? false
  }

  setLatency(latencyMs: number | LatencyFn, jitterMs?: number): void
  setLatency(from: string, to: string, latencyMs: number): void
  setLatency(x: number | LatencyFn | string, y?: number | string, z?: number): void {
    if (typeof x === 'string') {
      if (typeof y !== 'string') throw new CausewayError('INVALID_ARGUMENT', 'setLatency(from, to, latencyMs) needs two site ids')
      this.checkPair(x, y)
      if (!isNonNegativeFinite(z)) throw invalidOptions('latencyMs must be a finite number >= 0')
      this.linkLatencyMs.set(`${x}->${y}`, z)
      return
    }
    if (typeof x !== 'function' && !isNonNegativeFinite(x)) {
      throw invalidOptions('latencyMs must be a finite number >= 0 or a function (from, to) => ms')
    }
    if (y !== undefined && !isNonNegativeFinite(y)) throw invalidOptions('jitterMs must be a finite number >= 0')
    this.latency = x
    this.linkLatencyMs.clear()
    if (y !== undefined) this.jitterMs = y
  }

  private checkPair(a: string, b: string): void {
    if (typeof a !== 'string' || typeof b !== 'string' || a === b) {
      throw new CausewayError('INVALID_ARGUMENT', 'expected two distinct site ids')
    }
  }

  private shouldBeUp(x: Endpoint, y: Endpoint): boolean {
    if (this.closed || x.state !== 'started' || y.state !== 'started') return false
    if (!x.allows(y.siteId) || !y.allows(x.siteId)) return false
    if (this.degree !== undefined && x.allow === undefined && y.allow === undefined) {
      this.sortedKnown ??= [...this.known].sort()
      this.overlay ??= overlayGraph(this.sortedKnown, this.degree)
      if (!this.overlay.get(x.siteId)?.has(y.siteId)) return false
    }
    if (this.cuts.has(pairKey(x.siteId, y.siteId)) || this.hungUp.has(pairKey(x.siteId, y.siteId))) return false
    const gx = this.partitionGroup.get(x.siteId)
    const gy = this.partitionGroup.get(y.siteId)
    return gx === undefined || gy === undefined || gx === gy
  }

  /** Recomputes every link's state from the topology; O(sites^2), sites are few. */
  private refreshLinks(): void {
    for (const link of this.links.values()) {
      if (!link.up) continue
      const ea = link.ends.get(link.a)!
      const eb = link.ends.get(link.b)!
      const current = this.endpoints.get(link.a) === ea && this.endpoints.get(link.b) === eb
      if (!current || !this.shouldBeUp(ea, eb)) this.linkDown(link)
    }
    const started = [...this.endpoints.values()].filter((e) => e.state === 'started')
    for (let i = 0; i < started.length; i++) {
      for (let j = i + 1; j < started.length; j++) {
        const x = started[i]!
        const y = started[j]!
        if (!this.shouldBeUp(x, y)) continue
        const key = pairKey(x.siteId, y.siteId)
        let link = this.links.get(key)
        if (link === undefined) {
          const [a, b] = x.siteId < y.siteId ? [x.siteId, y.siteId] : [y.siteId, x.siteId]
          link = new Link(a, b)
          this.links.set(key, link)
        }
        if (!link.up) this.linkUp(link, x, y)
      }
    }
  }

  private linkUp(link: Link, x: Endpoint, y: Endpoint): void {
    link.up = true
    link.epoch++
    link.ends = new Map([
      [x.siteId, x],
      [y.siteId, y],
    ])
    this.emit({ ep: x, kind: 'peerUp', peer: y.siteId })
    this.emit({ ep: y, kind: 'peerUp', peer: x.siteId })
  }

  private linkDown(link: Link): void {
    link.up = false
    for (const dir of link.dirs.values()) this.dropQueue(dir)
    for (const [site, ep] of link.ends) {
      const peer = site === link.a ? link.b : link.a
      if (ep.state === 'started') this.emit({ ep, kind: 'peerDown', peer })
    }
  }

  private dropQueue(dir: Direction): void {
    if (dir.timer !== undefined) clearTimer(dir.timer)
    dir.timer = undefined
    this.dropped.frames += dir.length
    this.dropped.bytes += dir.queuedBytes
    dir.frames = []
    dir.deliverAtMs = []
    dir.head = 0
    dir.queuedBytes = 0
    dir.needsDrain = false
    dir.lastDeliverAtMs = -Infinity
  }

  // ---- handler callbacks ---------------------------------------------------------------------

  private emit(ev: PendingEvent): void {
    this.events.push(ev)
    if (this.flushScheduled) return
    this.flushScheduled = true
    // A microtask runs before any delivery timer, so a peer always sees peerUp before frames.
    queueMicrotask(() => this.flushEvents())
  }

  private flushEvents(): void {
    // Loop: a callback may cause more transitions, which must be delivered after this batch.
    for (let i = 0; i < this.events.length; i++) {
      const ev = this.events[i]!
      if (ev.ep.state !== 'started') continue
      this.call(ev.ep, ev.kind, () => ev.ep.handler![ev.kind](ev.peer))
    }
    this.events = []
    this.flushScheduled = false
  }

  private call(ep: Endpoint, kind: HandlerCallback, fn: () => void): void {
    try {
      fn()
    } catch (e) {
      this.onHandlerError(e, ep.siteId, kind)
    }
  }

  // ---- frames --------------------------------------------------------------------------------

  private delayMs(from: string, to: string): number {
    const override = this.linkLatencyMs.get(`${from}->${to}`)
    let base: number
    if (override !== undefined) base = override
    else if (typeof this.latency === 'function') {
      base = this.latency(from, to)
      if (!isNonNegativeFinite(base)) throw invalidOptions(`latencyMs(${from}, ${to}) returned ${String(base)}`)
    } else base = this.latency
    return this.jitterMs > 0 ? base + this.random() * this.jitterMs : base
  }

  private send(ep: Endpoint, peer: string, bytes: Uint8Array): boolean {
    if (!(bytes instanceof Uint8Array)) throw new CausewayError('INVALID_ARGUMENT', 'send() takes a Uint8Array')
    const link = this.links.get(pairKey(ep.siteId, String(peer)))
    if (this.closed || ep.state !== 'started' || link === undefined || !link.up || link.ends.get(ep.siteId) !== ep) {
      this.dropped.frames++
      this.dropped.bytes += bytes.byteLength
      return false
    }
    const dir = link.dirs.get(ep.siteId)!
    // Copy: the receiver owns its buffer and must never alias the sender's (real networks don't).
    const copy = new Uint8Array(bytes)
    const nowMs = this.deliveryClock.nowMs()
    const at = Math.max(dir.lastDeliverAtMs, nowMs + this.delayMs(ep.siteId, peer))
    dir.lastDeliverAtMs = at
    dir.frames.push(copy)
    dir.deliverAtMs.push(at)
    dir.queuedBytes += copy.byteLength
    dir.stats.frames++
    dir.stats.bytes += copy.byteLength
    this.totals.frames++
    this.totals.bytes += copy.byteLength
    this.linkStats(ep.siteId, peer, copy.byteLength)
    if (dir.queuedBytes > this.maxQueuedBytes) {
      // The sender ignored backpressure: reset the connection, like a transport would.
      this.linkDown(link)
      this.refreshLinks()
      return false
    }
    if (dir.timer === undefined) this.schedule(link, dir, nowMs)
    if (dir.queuedBytes > this.highWaterBytes) {
      dir.needsDrain = true
      return false
    }
    return true
  }

  private linkStats(from: string, to: string, bytes: number): void {
    const key = `${from}->${to}`
    let s = this.perLink.get(key)
    if (s === undefined) {
      s = { frames: 0, bytes: 0 }
      this.perLink.set(key, s)
    }
    s.frames++
    s.bytes += bytes
  }

  private schedule(link: Link, dir: Direction, nowMs: number): void {
    const waitMs = dir.deliverAtMs[dir.head]! - nowMs
    const epoch = link.epoch
    const fire = (): void => this.deliver(link, dir, epoch)
    if (this.vt !== undefined) {
      dir.timer = { handle: undefined, immediate: false, cancel: this.vt.after(waitMs, fire) }
      return
    }
    // Zero delay still goes through the event loop: send() never delivers synchronously.
    dir.timer =
      waitMs <= 0
        ? { handle: setImmediate(fire), immediate: true }
        : { handle: setTimeout(fire, Math.ceil(waitMs)), immediate: false }
  }

  private deliver(link: Link, dir: Direction, epoch: number): void {
    dir.timer = undefined
    if (!link.up || link.epoch !== epoch) return
    const receiver = link.ends.get(dir.to)!
    const sender = link.ends.get(dir.from)!
    const nowMs = this.deliveryClock.nowMs()
    let n = 0
    // The head is due (its timer fired); later frames go too if due, up to a batch bound.
    while (dir.head < dir.frames.length && link.up && link.epoch === epoch && n < MAX_FRAMES_PER_TICK) {
      if (n > 0 && dir.deliverAtMs[dir.head]! > nowMs) break
      const frame = dir.frames[dir.head]!
      dir.frames[dir.head] = undefined as unknown as Uint8Array // release memory early
      dir.head++
      dir.queuedBytes -= frame.byteLength
      this.delivered.frames++
      this.delivered.bytes += frame.byteLength
      n++
      if (this.tracing) this.frameTrace.add(nowMs, dir.from, dir.to, frame)
      this.call(receiver, 'frame', () => receiver.handler!.frame(dir.from, frame))
    }
    if (!link.up || link.epoch !== epoch) return
    if (dir.head > 1024 && dir.head * 2 > dir.frames.length) {
      dir.frames = dir.frames.slice(dir.head)
      dir.deliverAtMs = dir.deliverAtMs.slice(dir.head)
      dir.head = 0
    }
    if (dir.needsDrain && dir.queuedBytes <= this.highWaterBytes / 2) {
      dir.needsDrain = false
      this.call(sender, 'drain', () => sender.handler!.drain(dir.to))
    }
    if (link.up && link.epoch === epoch && dir.length > 0 && dir.timer === undefined) {
      this.schedule(link, dir, this.deliveryClock.nowMs())
    }
  }

  inFlight(): number {
    let n = 0
    for (const link of this.links.values()) for (const dir of link.dirs.values()) n += dir.length
    return n
  }

  // ---- settle --------------------------------------------------------------------------------

  settle(timeoutMs: number = this.settleTimeoutMs): Promise<void> {
    if (this.closed) return Promise.reject(new CausewayError('CLOSED', 'network is closed'))
    if (!isNonNegativeFinite(timeoutMs)) return Promise.reject(invalidOptions('timeoutMs must be a finite number >= 0'))
    if (this.vt !== undefined) return this.settleVirtual(this.vt, timeoutMs)
    return new Promise<void>((resolve, reject) => {
      let consecutive = 0
      let lastProblem = 'never polled'
      const waiter: SettleWaiter = {
        reject,
        pollTimer: undefined,
        timeoutTimer: undefined,
      }
      const finish = (): void => {
        if (waiter.pollTimer !== undefined) clearTimeout(waiter.pollTimer)
        if (waiter.timeoutTimer !== undefined) clearTimeout(waiter.timeoutTimer)
        this.waiters.delete(waiter)
      }
      const poll = (): void => {
        waiter.pollTimer = undefined
        const problem = this.unsettled()
        if (problem === undefined) {
          // Two consecutive clean polls: a frame could be produced between an idle report and
          // the next poll (e.g. a heartbeat), so one clean snapshot is not proof of quiescence.
          if (++consecutive >= 2) {
            finish()
            resolve()
            return
          }
        } else {
          consecutive = 0
          lastProblem = problem
        }
        waiter.pollTimer = setTimeout(poll, this.settlePollMs)
      }
      waiter.timeoutTimer = setTimeout(() => {
        finish()
        reject(new CausewayError('TIMEOUT', `network did not settle within ${timeoutMs} ms: ${lastProblem}`, { details: { reason: lastProblem } }))
      }, timeoutMs)
      this.waiters.add(waiter)
      poll()
    })
  }

  /** settle() in virtual time: the same two clean polls, settlePollMs of virtual time apart. */
  private async settleVirtual(vt: VirtualTime, timeoutMs: number): Promise<void> {
    const deadline = vt.nowMs() + timeoutMs
    let consecutive = 0
    let lastProblem = 'never polled'
    await vt.run(0)
    for (;;) {
      if (this.closed) throw new CausewayError('CLOSED', 'network closed while settling')
      const problem = this.unsettled()
      if (problem === undefined) {
        if (++consecutive >= 2) return
      } else {
        consecutive = 0
        lastProblem = problem
      }
      if (vt.nowMs() >= deadline) {
        throw new CausewayError('TIMEOUT', `network did not settle within ${timeoutMs} virtual ms: ${lastProblem}`, { details: { reason: lastProblem } })
      }
      await vt.run(Math.min(this.settlePollMs, deadline - vt.nowMs()))
    }
  }

  run(ms: number): Promise<void> {
    if (this.vt === undefined) return Promise.reject(new CausewayError('INVALID_ARGUMENT', 'run() needs a network created with virtualTime: true'))
    return this.vt.run(ms)
  }

  trace(): string {
    return this.frameTrace.digest()
  }

  /** Why the network is not settled, or undefined when it is. */
  private unsettled(): string | undefined {
    if (this.events.length > 0) return 'peer events pending'
    // Frames in flight are not checked: heartbeats are always in flight when the latency exceeds
    // their interval. Converged applied vectors over reachable pairs already imply that no write
    // is still on its way (its origin has applied it, so a lagging receiver shows up below).
    const started = [...this.endpoints.values()].filter((e) => e.state === 'started')
    const progress = new Map<string, SiteProgress>()
    for (const ep of started) {
      let p: SiteProgress
      try {
        p = ep.handler!.inspect()
      } catch (e) {
        return `site ${ep.siteId} inspect() threw: ${String(e)}`
      }
      if (!p.idle) return `site ${ep.siteId} is not idle`
      progress.set(ep.siteId, p)
    }
    // Directed edges y -> x: y sends writes to x and x accepts them, over an up link.
    const out = new Map<string, string[]>()
    for (const link of this.links.values()) {
      if (!link.up) continue
      for (const [from, to] of [
        [link.a, link.b],
        [link.b, link.a],
      ] as const) {
        const sendCfg = link.ends.get(from)!.config(to)
        const recvCfg = link.ends.get(to)!.config(from)
        if (sendCfg?.send && recvCfg?.receive) {
          let list = out.get(from)
          if (list === undefined) out.set(from, (list = []))
          list.push(to)
        }
      }
    }
    for (const ep of started) {
      const y = ep.siteId
      const py = progress.get(y)!
      const seen = new Set([y])
      const stack = [y]
      while (stack.length > 0) {
        for (const x of out.get(stack.pop()!) ?? []) {
          if (seen.has(x)) continue
          seen.add(x)
          stack.push(x)
          const px = progress.get(x)!
          for (const [stream, n] of Object.entries(py.applied)) {
            const have = px.applied[stream] ?? 0
            if (have < n) return `site ${x} lags site ${y} on stream ${stream}: applied ${have} < ${n}`
          }
        }
      }
    }
    return undefined
  }

  // ---- stats & lifecycle ---------------------------------------------------------------------

  stats(): SimNetworkStats {
    const perLink: Record<string, SimLinkStats> = {}
    for (const [k, v] of this.perLink) perLink[k] = { ...v }
    // API.md: frames/bytes are the frames delivered so far; what send() accepted is `sent`.
    return { ...this.delivered, sent: { ...this.totals }, perLink, delivered: { ...this.delivered }, dropped: { ...this.dropped } }
  }

  resetStats(): void {
    this.perLink.clear()
    this.totals = { frames: 0, bytes: 0 }
    this.delivered = { frames: 0, bytes: 0 }
    this.dropped = { frames: 0, bytes: 0 }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const link of this.links.values()) if (link.up) this.linkDown(link)
    for (const w of this.waiters) {
      if (w.pollTimer !== undefined) clearTimeout(w.pollTimer)
      if (w.timeoutTimer !== undefined) clearTimeout(w.timeoutTimer)
      w.reject(new CausewayError('CLOSED', 'network closed while settling'))
    }
    this.waiters.clear()
  }

  private assertOpen(): void {
    if (this.closed) throw new CausewayError('CLOSED', 'network is closed')
  }
}

/** Creates an in-process network; see SimNetworkOptions for the knobs. */
export function createSimNetwork(options: SimNetworkOptions = {}): SimNetwork {
  if (options === null || typeof options !== 'object') throw invalidOptions('options must be an object')
  return new SimNetworkImpl(options)
}
