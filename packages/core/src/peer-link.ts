import type { StreamId } from './context.js'
import type { LinkDecoder, LinkEncoder } from './link-codec.js'

/** What this site knows of one configured peer and of its connection (replication.ts, sender.ts). */
export interface PeerLink {
  id: string
  up: boolean
  helloIn: boolean
  everSeen: boolean
  lastSeenAt: number
  theirAccepts: boolean
  theirSends: boolean
  neverAccepts: boolean
  /** What the peer is known to hold, per stream (from hello, beats, acks and what it sent us). */
  known: Map<StreamId, number>
  /** Highest seq sent on the current connection, per stream. */
  cursor: Map<StreamId, number>
  ups: Set<string>
  blocked: boolean
  pumping: boolean
  repump: boolean
  inbound: Promise<void>
  inboundDepth: number
  /** Streams whose next entry from this peer carried a time too far ahead: asked for again at heartbeats. */
  deferred: Set<StreamId>
  /** The peer's own streams it asked us to send back to it (it is recovering them). */
  pulls: Set<StreamId>
  /** Origins this peer asked us not to relay to it (it has their writes from elsewhere). */
  pruned: Set<string>
  /** Origins we ask this peer not to relay to us, and for how many beats it has been ahead on one. */
  pruneOut: Map<string, number>
  /** Beats out and in on the current connection (names once, vectors as deltas). */
  enc: LinkEncoder
  dec: LinkDecoder
  /** Bumped by every nack from the peer: a frame being built from an older cursor is thrown away. */
  rewinds: number
  badFrames: number
  badSinceMs: number
  /** Set when the peer's configuration (conflicts, scopes) differs: why. No writes either way. */
  incompatible?: string
  /** Ignored (frames dropped, connections hung up) until then. */
  faultyUntilMs: number
}
