import type { AddPeerOptions, Clock, NetworkAdapter } from '@causeway/core'

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
  /** Frames accepted by send() into a link (including ones later dropped by a link going down). */
  frames: number
  bytes: number
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
  /** Allow a peer at run time (default mesh: undo a removePeer, or set directions). */
  addPeer(peer: AddPeerOptions): void
  /** Forget a peer at run time: the link goes down and stays down until addPeer. */
  removePeer(site: string): void
}

export interface SimNetwork {
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
