/**
 * The transport contract between a site's replication engine and a network (sim or libp2p).
 * The engine knows nothing of sockets; a network knows nothing of keys, versions or dependencies.
 * Frames are opaque bytes, delivered reliably and in order per connection while it is up; a frame
 * in flight when a connection drops may be lost (the engine resumes from version vectors).
 */
export interface PeerConfig {
  /** The peer's site id. */
  site: string
  /** This site sends writes to the peer (default true). Control frames flow both ways regardless. */
  send: boolean
  /** This site accepts writes from the peer (default true). */
  receive: boolean
}

/** A peer added at run time (network.addPeer). */
export interface AddPeerOptions {
  site: string
  /** Where to dial it (libp2p multiaddrs ending with /p2p/<peerId>); the sim ignores them. */
  addrs?: string[]
  /** libp2p: the peer's PeerId when it has no addrs (it dials us). */
  peerId?: string
  send?: boolean
  receive?: boolean
}

export interface NetworkHandler {
  /** A connection to `peer` is established (may be called again after peerDown). */
  peerUp(peer: string): void
  /** The connection to `peer` is gone. Frames sent before may or may not have arrived. */
  peerDown(peer: string): void
  /** A frame arrived from `peer`. The buffer is owned by the handler from now on. */
  frame(peer: string, bytes: Uint8Array): void
  /** The peer's outbound buffer fell below its low-water mark after send() returned false. */
  drain(peer: string): void
  /** Progress snapshot for network-level tooling (sim settle, status); never used for correctness. */
  inspect(): SiteProgress
}

/** Version vectors keyed by stream id (`<origin site>/<origin shard>`). */
export interface SiteProgress {
  /** Contiguous prefix of each stream durably received (and relayable). */
  received: Record<string, number>
  /** Contiguous prefix of each stream applied (visible). */
  applied: Record<string, number>
  /** True when the engine has no commit, apply or send work queued. */
  idle: boolean
}

export interface NetworkAdapter {
  /** Bind to a site. Called exactly once, by openSite, before any other method. */
  start(siteId: string, handler: NetworkHandler): Promise<void>
  /** The configured peers (the allow-list and directions). May change over time (sim: sites joining). */
  peers(): PeerConfig[]
  /**
   * Queue a frame to a connected peer. Returns false when the frame was not queued (peer not
   * connected) or the outbound buffer is over its high-water mark (frame queued; wait for drain()).
   * Never throws for a disconnected peer.
   */
  send(peer: string, bytes: Uint8Array): boolean
  /** Largest frame send() accepts, in bytes (the engine never builds a bigger one). Default: no limit. */
  readonly maxFrameBytes?: number
  /** Is there a live connection to this peer right now? */
  connected(peer: string): boolean
  /**
   * Hang up on a peer that misbehaves (it may reconnect; the engine ignores it for a while).
   * Optional: a network without it keeps the connection and the engine drops the peer's frames.
   */
  disconnect?(peer: string): void
  /**
   * Membership at run time (optional; sim and libp2p implement it): allow and connect a new peer
   * (libp2p needs `addrs` ending with /p2p/<peerId>, or a `peerId`), or forget one (its connection
   * closes, it is no longer dialed or accepted). peers() reflects the change at once.
   */
  addPeer?(peer: AddPeerOptions): void
  removePeer?(site: string): void
  /** Stop: close connections, release ports. Idempotent. */
  stop(): Promise<void>
}
