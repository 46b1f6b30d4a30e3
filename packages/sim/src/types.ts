import type { Clock, NetworkAdapter, Timers } from '@causeway/core'

/** One-way latency of a frame from `from` to `to`, in milliseconds (finite, >= 0). */
export type LatencyFn = (from: string, to: string) => number

export interface SimNetworkOptions {
  /** One-way base latency in ms, or a per-direction function (default 0). */
  latencyMs?: number | LatencyFn
  /** Extra delay drawn uniformly from [0, jitterMs) per frame; FIFO per link direction still holds (default 0). */
  jitterMs?: number
  /** PRNG seed for the jitter (default 0x5eed). */
  seed?: number
  /** Queued-not-delivered bytes per link direction above which send() returns false (default 1 MiB). */
  highWaterBytes?: number
  /**
   * Hard bound per link direction (default 64 x highWaterBytes). A sender that ignores backpressure
   * past it gets its connection reset (frames dropped, peerDown then peerUp), like a real transport.
   */
  maxQueuedBytes?: number
  /** Default timeout of settle() (default 30_000 ms). */
  settleTimeoutMs?: number
  /** Poll interval of settle() (default 5 ms). */
  settlePollMs?: number
  /**
   * Deterministic mode (default false): time is virtual and advances only through run() and
   * settle() (or by itself while an operation with a deadline waits); latency, heartbeats and
   * timeouts cost no wall time. Give the sites `clock: net.clock, timers: net.timers` and memory
   * storage. The same seed and the same calls then give the same trace().
   */
  virtualTime?: boolean
  /**
   * The default mesh becomes a bounded-degree overlay: each site links to about `degree` others
   * (core's overlayGraph: a hashed ring plus chords, the same graph at every site) and reaches the
   * rest by relay. Default: every site talks to every other site.
   */
  degree?: number
  /** Keep the digest of delivered frames for trace() (default: virtualTime; it costs a hash per byte). */
  trace?: boolean
  /** Virtual time at creation, ms since the epoch (default 2026-01-01T00:00:00Z). */
  virtualStartMs?: number
  /** Time source for delivery deadlines (default: performance.now, which vitest fake timers also fake). */
  clock?: Clock
  /**
   * Called when a handler callback throws. Default: rethrow on a fresh microtask, so the bug is loud
   * but the simulated link state stays consistent.
   */
  onHandlerError?: (error: unknown, site: string, callback: 'peerUp' | 'peerDown' | 'frame' | 'drain') => void
}

export interface SimPeerOptions {
  site: string
  /** This site sends writes to the peer (default true). Reported to the engine only. */
  send?: boolean
  /** This site accepts writes from the peer (default true). Reported to the engine only. */
  receive?: boolean
}

export interface SimAdapterOptions {
  /** Explicit allow-list; omitted: every other site of the network, including later ones. */
  peers?: SimPeerOptions[]
}

export interface SimLinkStats {
  frames: number
  bytes: number
}

export interface SimNetworkStats {
  /** Frames delivered so far (handed to a receiving handler), and their encoded size (API.md). */
  frames: number
  bytes: number
  /** Frames accepted by send() into a link (including ones later dropped by a link going down). */
  sent: SimLinkStats
  /** Per direction, keyed `'<from>-><to>'`: frames/bytes accepted by send(). */
  perLink: Record<string, SimLinkStats>
  /** Frames handed to a receiving handler. */
  delivered: SimLinkStats
  /** Frames lost: sent on a down link, or in flight when a link went down or reset. */
  dropped: SimLinkStats
}

/** The NetworkAdapter of one simulated site. */
export interface SimAdapter extends NetworkAdapter {
  readonly siteId: string
  /**
   * Accept a peer at run time (API.md "Membership"): added to an explicit allow-list, or taken back
   * into the default mesh after removePeer(). The link comes up when both sides allow each other.
   */
  addPeer(peer: SimPeerOptions): void
  /** Stop talking to a peer: the link goes down and the peer is no longer listed by peers(). */
  removePeer(site: string): void
}

export interface SimNetwork {
  /** The clock to give sites: virtual with virtualTime, else the system clock. */
  readonly clock: Clock
  /** The timers to give sites: virtual with virtualTime, else the system's. */
  readonly timers: Timers
  /**
   * Virtual time only: advances time by ms, firing every timer and delivery due meanwhile (in
   * order: due time, then scheduling order) and letting the async work they start finish between
   * events. Rejects INVALID_ARGUMENT on a network without virtualTime.
   */
  run(ms: number): Promise<void>
  /**
   * Digest of every frame delivered so far (delivery time, from, to, bytes), `<count>:<hash hex>`.
   * Equal traces mean (up to hash collisions) identical deliveries. Kept only with the `trace`
   * option (on by default with virtualTime); otherwise always `0:` and the initial hash.
   */
  trace(): string
  /** A NetworkAdapter for `siteId`; a stopped site's id may be reused (simulates a restart). */
  adapter(siteId: string, options?: SimAdapterOptions): SimAdapter
  /**
   * Sites in different groups cannot talk. Sites named in no group stay connected to everyone.
   * Replaces any previous partition (cuts made with cut() are kept).
   */
  partition(...groups: string[][]): void
  /** Removes the partition and every cut. */
  heal(): void
  /** Cuts the single link between a and b (both directions) until restore() or heal(). */
  cut(a: string, b: string): void
  restore(a: string, b: string): void
  /** Is the link between a and b up right now? */
  connected(a: string, b: string): boolean
  /** Changes the latency for frames sent from now on: globally, or for one direction. */
  setLatency(latencyMs: number | LatencyFn, jitterMs?: number): void
  setLatency(from: string, to: string, latencyMs: number): void
  /** Every site id that ever got an adapter in this network. */
  sites(): string[]
  /** Frames currently in flight (queued, not delivered) over all links. */
  inFlight(): number
  /**
   * Resolves once no peer event is pending, every started site is idle, and every site has applied
   * every write of each site that can reach it through up links (per stream, directed by the
   * send/receive configuration), on two consecutive polls. Frames in flight (heartbeats) are not
   * waited for. Rejects with TIMEOUT after timeoutMs.
   */
  settle(timeoutMs?: number): Promise<void>
  stats(): SimNetworkStats
  resetStats(): void
  /** Takes every link down, rejects pending settles with CLOSED, clears every timer. Idempotent. */
  close(): Promise<void>
}
