// Before any libp2p import: libp2p 3.x needs Promise.withResolvers, which Node 20 lacks.
import './polyfills.js'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { CausewayError, isSiteId } from '@causeway/core'
import type { AddPeerOptions, Logger, NetworkAdapter, NetworkHandler, PeerConfig } from '@causeway/core'
import type { Connection, ConnectionGater, ConnectionProtector, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { encodeFrame, FrameDecoder } from './frame.js'
import type { Chunk } from './frame.js'
import { loadOrCreatePrivateKey, readSwarmKeyFile } from './keys.js'
import { pskProtector } from './pnet.js'
import { peerIdOfMultiaddr, resolveOptions } from './options.js'
import type { Libp2pNetworkOptions, ResolvedOptions, ResolvedPeer } from './options.js'

/** The one protocol Causeway speaks; a breaking change of framing or hello bumps the version. */
export const REPLICATION_PROTOCOL = '/causeway/replication/1.0.0'
/** Hello frames are tiny JSON objects; a bigger one is a protocol error. */
export const MAX_HELLO_BYTES = 1024
const HELLO_TAG = 'causeway-replication/1'
/** Slack above maxFrameBytes for libp2p's own read buffer (it only fills while we are not listening). */
const READ_BUFFER_SLACK_BYTES = 64 * 1024
/** Due frames are merged into stream writes of up to this size. */
const COALESCE_BYTES = 64 * 1024
/** Streams of one peer allowed in the hello phase at once (a restart plus a simultaneous dial). */
const MAX_PENDING_STREAMS_PER_PEER = 2

/** What libp2pNetwork() returns: a NetworkAdapter plus how others reach this node. */
export interface Libp2pNetwork extends NetworkAdapter {
  /** This node's PeerId (base58btc string). */
  readonly peerId: string
  /** Listening multiaddrs, each ending with /p2p/<peerId>. */
  readonly addrs: string[]
  /** The frame size cap: send() throws INVALID_FRAME above it. */
  readonly maxFrameBytes: number
  /** Allow and dial a peer at run time (addrs ending with /p2p/<peerId>, or a peerId: it dials us). Emulated latency 0. */
  addPeer(peer: AddPeerOptions): void
  /** Forget a peer: its streams and connection close; it is no longer dialed nor accepted. */
  removePeer(site: string): void
}

type ChannelState = 'hello' | 'active' | 'dead'

interface OutFrame {
  encoded: Uint8Array
  /** opts.clock time at which the emulated WAN delivers the frame to the socket. */
  dueAtMs: number
}

/** A FIFO with O(1) shift; compacts once the consumed prefix dominates. */
class Fifo<T> {
  private items: T[] = []
  private head = 0
  get length(): number { return this.items.length - this.head }
  push(v: T): void { this.items.push(v) }
  peek(): T | undefined { return this.items[this.head] }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const v = this.items[this.head++]
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return v
  }
  clear(): void { this.items = []; this.head = 0 }
}

interface PeerState extends ResolvedPeer {
  /** The one replication stream frames flow on. */
  active: Channel | undefined
  /** Streams that have not completed the hello exchange yet. */
  pending: Set<Channel>
  dialing: boolean
  dialTimer: ReturnType<typeof setTimeout> | undefined
  /** Delay before the next dial attempt; doubles on failure, reset on success. */
  backoffMs: number
  /** send() returned false for high water: call handler.drain once below half. */
  needDrain: boolean
}

class Channel {
  state: ChannelState = 'hello'
  readonly decoder: FrameDecoder
  readonly queue = new Fifo<OutFrame>()
  /** Encoded bytes waiting in `queue` (not yet handed to the stream). */
  queuedBytes = 0
  pumpTimer: ReturnType<typeof setTimeout> | undefined
  pumpScheduled = false
  helloTimer: ReturnType<typeof setTimeout> | undefined
  constructor(
    readonly peer: PeerState,
    readonly stream: Stream,
    readonly connection: Connection,
    /** PeerId of the side that opened the stream: the dedupe rule keeps the lower one's. */
    readonly initiator: string,
    maxFrameBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes)
  }
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

function errorMessages(err: unknown): string {
  const parts: string[] = []
  let e: unknown = err
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    parts.push(e.message)
    e = e.cause
  }
  if (err instanceof AggregateError) for (const x of err.errors) parts.push(String((x as Error)?.message ?? x))
  return parts.join(': ')
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}

function encodeHello(from: string, to: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ causeway: HELLO_TAG, from, to }))
}

/** Parse a hello frame; returns an error message or undefined when it is what we expect. */
function checkHello(bytes: Uint8Array, expectFrom: string, expectTo: string): string | undefined {
  if (bytes.byteLength > MAX_HELLO_BYTES) return `hello frame too large (${bytes.byteLength} bytes)`
  let msg: unknown
  try {
    msg = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return 'hello frame is not JSON'
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return 'hello frame is not an object'
  const m = msg as Record<string, unknown>
  if (m['causeway'] !== HELLO_TAG) return `unsupported hello tag ${JSON.stringify(m['causeway'])}`
  if (m['from'] !== expectFrom) return `peer claims site ${JSON.stringify(m['from'])} but is configured as "${expectFrom}"`
  if (m['to'] !== expectTo) return `peer thinks it talks to site ${JSON.stringify(m['to'])}, this is "${expectTo}"`
  return undefined
}

class Libp2pNetworkImpl implements Libp2pNetwork {
  readonly peerId: string
  readonly addrs: string[]
  readonly maxFrameBytes: number
  private readonly node: Libp2p
  private readonly opts: ResolvedOptions
  private readonly log: Logger
  private readonly bySite = new Map<string, PeerState>()
  private readonly byPeerId = new Map<string, PeerState>()
  private readonly abort = new AbortController()
  /** Built once: the engine looks peers up on every frame, so peers() must not allocate. */
  private peerConfigs: readonly PeerConfig[]
  private siteId: string | undefined
  private handler: NetworkHandler | undefined
  private stopped = false
  private stopPromise: Promise<void> | undefined

  constructor(node: Libp2p, opts: ResolvedOptions, peerId: string, private readonly allowed: Set<string>) {
    this.node = node
    this.opts = opts
    this.log = opts.logger
    this.peerId = peerId
    this.maxFrameBytes = opts.maxFrameBytes
    this.addrs = node.getMultiaddrs().map((ma) => {
      const s = ma.toString()
      return peerIdOfMultiaddr(ma) === undefined ? `${s}/p2p/${peerId}` : s
    })
    for (const p of opts.peers) {
      const st: PeerState = { ...p, active: undefined, pending: new Set(), dialing: false, dialTimer: undefined, backoffMs: opts.dialIntervalMs, needDrain: false }
      this.bySite.set(p.site, st)
      this.byPeerId.set(p.peerId, st)
    }
    this.peerConfigs = this.buildPeerConfigs()
  }

  private buildPeerConfigs(): readonly PeerConfig[] {
    return Object.freeze([...this.bySite.values()].map((p) => Object.freeze({ site: p.site, send: p.send, receive: p.receive })))
  }

  // ---- run-time membership --------------------------------------------------------------------

  addPeer(p: AddPeerOptions): void {
    if (this.stopped) throw new CausewayError('CLOSED', 'libp2p network is stopped')
    // The same validation as the peers option, one entry at a time.
    const { peers } = resolveOptions({ peers: [p] })
    const r = peers[0]!
    if (r.site === this.siteId || r.peerId === this.peerId) throw new CausewayError('INVALID_OPTIONS', 'a site cannot add itself as a peer')
    const other = this.byPeerId.get(r.peerId)
    if (other !== undefined && other.site !== r.site) throw new CausewayError('INVALID_OPTIONS', `PeerId ${r.peerId} is already configured for site "${other.site}"`)
    const cur = this.bySite.get(r.site)
    if (cur !== undefined && cur.peerId !== r.peerId) this.removePeer(r.site)
    const existing = this.bySite.get(r.site)
    if (existing !== undefined) {
      // Known already: new directions and addresses, same connection.
      existing.send = r.send
      existing.receive = r.receive
      if (r.addrs.length > 0) existing.addrs = r.addrs
    } else {
      const st: PeerState = { ...r, latencyMs: 0, active: undefined, pending: new Set(), dialing: false, dialTimer: undefined, backoffMs: this.opts.dialIntervalMs, needDrain: false }
      this.bySite.set(r.site, st)
      this.byPeerId.set(r.peerId, st)
      this.allowed.add(r.peerId)
      if (this.handler !== undefined) this.scheduleDial(st, 0)
    }
    this.peerConfigs = this.buildPeerConfigs()
  }

  removePeer(site: string): void {
    const peer = this.bySite.get(site)
    if (peer === undefined) return
    this.bySite.delete(site)
    this.byPeerId.delete(peer.peerId)
    this.allowed.delete(peer.peerId)
    this.peerConfigs = this.buildPeerConfigs()
    if (peer.dialTimer !== undefined) clearTimeout(peer.dialTimer)
    peer.dialTimer = undefined
    for (const ch of [...peer.pending]) this.kill(ch, 'peer removed', false)
    if (peer.active !== undefined) this.kill(peer.active, 'peer removed', false)
    // Close the connection itself too: the gater refuses it from now on.
    void this.node.hangUp(peerIdFromString(peer.peerId)).catch(() => {})
  }

  // ---- NetworkAdapter -------------------------------------------------------------------------

  async start(siteId: string, handler: NetworkHandler): Promise<void> {
    if (this.stopped) throw new CausewayError('CLOSED', 'libp2p network is stopped')
    if (this.handler !== undefined) throw new CausewayError('INVALID_OPTIONS', 'libp2p network already started (one adapter per site)')
    if (!isSiteId(siteId)) throw new CausewayError('INVALID_OPTIONS', `invalid site id ${JSON.stringify(siteId)}`)
    if (this.bySite.has(siteId)) throw new CausewayError('INVALID_OPTIONS', `site "${siteId}" lists itself as a peer`)
    if (this.byPeerId.has(this.peerId)) throw new CausewayError('INVALID_OPTIONS', `site "${siteId}" lists its own PeerId ${this.peerId} as a peer`)
    this.siteId = siteId
    this.handler = handler
    await this.node.handle(REPLICATION_PROTOCOL, (stream, connection) => this.onInboundStream(stream, connection), {
      maxInboundStreams: MAX_PENDING_STREAMS_PER_PEER,
      maxOutboundStreams: MAX_PENDING_STREAMS_PER_PEER,
    })
    for (const peer of this.bySite.values()) {
      // Both ends dial; the higher PeerId waits a little so simultaneous dials (then dedupe) are rare.
      this.scheduleDial(peer, this.peerId < peer.peerId ? 0 : this.opts.dialIntervalMs)
    }
    this.log.info({ localSite: siteId, peerId: this.peerId, addrs: this.addrs }, 'libp2p network started')
  }

  peers(): PeerConfig[] {
    // Frozen and shared: callers read it, nobody may edit the allow-list through it.
    return this.peerConfigs as PeerConfig[]
  }

  connected(peer: string): boolean {
    return this.bySite.get(peer)?.active !== undefined
  }

  send(site: string, bytes: Uint8Array): boolean {
    if (this.stopped) return false
    const peer = this.bySite.get(site)
    const ch = peer?.active
    if (peer === undefined || ch === undefined) return false
    if (bytes.byteLength > this.opts.maxFrameBytes) {
      // A caller bug: the peer would drop the connection, and the frame would be retried forever.
      throw new CausewayError('INVALID_FRAME', `frame of ${bytes.byteLength} bytes exceeds maxFrameBytes (${this.opts.maxFrameBytes})`)
    }
    const encoded = encodeFrame(bytes)
    ch.queue.push({ encoded, dueAtMs: this.opts.clock.nowMs() + peer.latencyMs })
    ch.queuedBytes += encoded.byteLength
    // Pump on the next microtask, so a burst of send() calls from one engine turn coalesces into
    // few stream writes, and the engine is never re-entered (drain) from inside its own send().
    if (!ch.pumpScheduled) {
      ch.pumpScheduled = true
      queueMicrotask(() => {
        ch.pumpScheduled = false
        this.pump(ch)
      })
    }
    if (ch.queuedBytes > this.opts.highWaterBytes) {
      peer.needDrain = true
      return false
    }
    return true
  }

  stop(): Promise<void> {
    if (this.stopPromise === undefined) this.stopPromise = this.doStop()
    return this.stopPromise
  }

  private async doStop(): Promise<void> {
    this.stopped = true
    this.abort.abort()
    for (const peer of this.bySite.values()) {
      if (peer.dialTimer !== undefined) clearTimeout(peer.dialTimer)
      peer.dialTimer = undefined
      for (const ch of [...peer.pending]) this.kill(ch, 'network stopped')
      // Connected peers see one last peerDown so up/down transitions stay balanced.
      if (peer.active !== undefined) this.kill(peer.active, 'network stopped')
    }
    try {
      await this.node.unhandle(REPLICATION_PROTOCOL)
    } catch { /* not registered: start() never ran */ }
    await this.node.stop()
    this.log.info({ localSite: this.siteId, peerId: this.peerId }, 'libp2p network stopped')
  }

  // ---- streams ---------------------------------------------------------------------------------

  private onInboundStream(stream: Stream, connection: Connection): void {
    const remote = connection.remotePeer.toString()
    const peer = this.byPeerId.get(remote)
    if (this.stopped || peer === undefined) {
      // The gater keeps unknown peers out; this only guards against a misconfigured libp2p.
      stream.abort(new Error('not accepting replication streams'))
      return
    }
    if (peer.pending.size >= MAX_PENDING_STREAMS_PER_PEER) {
      this.log.warn({ peer: peer.site, peerId: remote }, 'too many replication streams in hello from one peer; refusing')
      stream.abort(new Error('too many pending replication streams'))
      return
    }
    this.attach(peer, stream, connection, remote)
  }

  private attach(peer: PeerState, stream: Stream, connection: Connection, initiator: string): void {
    const ch = new Channel(peer, stream, connection, initiator, this.opts.maxFrameBytes)
    peer.pending.add(ch)
    // libp2p buffers incoming data only while nobody listens; bound it anyway.
    stream.maxReadBufferLength = this.opts.maxFrameBytes + READ_BUFFER_SLACK_BYTES
    stream.addEventListener('message', (evt) => this.onData(ch, evt.data))
    stream.addEventListener('close', (evt) => this.kill(ch, evt.error === undefined ? 'stream closed' : `stream closed: ${evt.error.message}`))
    // A half-closed replication stream is useless to us: close ours too and redial.
    stream.addEventListener('remoteCloseWrite', () => this.kill(ch, 'peer closed the stream'))
    stream.addEventListener('drain', () => this.pump(ch))
    ch.helloTimer = setTimeout(() => {
      ch.helloTimer = undefined
      this.log.warn({ peer: peer.site, peerId: peer.peerId }, 'replication hello timed out')
      this.kill(ch, 'hello timeout')
    }, this.opts.helloTimeoutMs)
    try {
      stream.send(encodeFrame(encodeHello(this.siteId!, peer.site)))
    } catch (err) {
      this.kill(ch, `cannot send hello: ${errorMessages(err)}`)
    }
  }

  private onData(ch: Channel, data: Chunk): void {
    if (ch.state === 'dead') return
    const err = ch.decoder.push(data, (frame) => this.onFrame(ch, frame))
    // The callback may have killed the channel (bad hello): check the state again.
    if (err !== undefined && (ch.state as ChannelState) !== 'dead') this.protocolError(ch, err.message)
  }

  private onFrame(ch: Channel, frame: Uint8Array): void {
    if (ch.state === 'dead') return
    const peer = ch.peer
    if (ch.state === 'hello') {
      const problem = checkHello(frame, peer.site, this.siteId!)
      if (problem !== undefined) {
        this.protocolError(ch, problem)
        return
      }
      this.adopt(ch)
      return
    }
    try {
      this.handler!.frame(peer.site, frame)
    } catch (err) {
      // The engine owns frame validation; a throw there must not take the transport down.
      this.log.error({ peer: peer.site, err }, 'replication frame handler threw')
    }
  }

  /** The stream completed its hello: make it the peer's replication stream (or drop a duplicate). */
  private adopt(ch: Channel): void {
    const peer = ch.peer
    peer.pending.delete(ch)
    if (ch.helloTimer !== undefined) clearTimeout(ch.helloTimer)
    ch.helloTimer = undefined
    const cur = peer.active
    if (cur !== undefined) {
      // Same opener twice: it redialled because it lost the old one, which is therefore stale.
      // Different openers (simultaneous dial): both sides keep the stream opened by the lower PeerId.
      const keepNew = cur.initiator === ch.initiator || ch.initiator < cur.initiator
      if (!keepNew) {
        this.log.debug({ peer: peer.site }, 'duplicate replication stream dropped')
        this.kill(ch, 'duplicate stream')
        return
      }
      this.log.debug({ peer: peer.site }, 'replication stream replaced')
      this.kill(cur, 'replaced by a newer stream', false)
    }
    ch.state = 'active'
    peer.active = ch
    peer.backoffMs = this.opts.dialIntervalMs
    if (peer.dialTimer !== undefined) clearTimeout(peer.dialTimer)
    peer.dialTimer = undefined
    this.log.info({ peer: peer.site, peerId: peer.peerId, direction: ch.stream.direction }, 'peer up')
    this.callHandler('peerUp', peer.site)
  }

  private protocolError(ch: Channel, reason: string): void {
    const peer = ch.peer
    this.log.warn({ peer: peer.site, peerId: peer.peerId, reason }, 'replication protocol error; dropping the connection')
    this.kill(ch, reason)
    // A peer that breaks framing may be compromised or buggy: drop its whole connection.
    try {
      ch.connection.abort(new CausewayError('INVALID_FRAME', reason))
    } catch { /* already closed */ }
  }

  /** Tear a channel down (idempotent); a live one reports peerDown and schedules a redial. */
  private kill(ch: Channel, reason: string, redial = true): void {
    if (ch.state === 'dead') return
    const wasActive = ch.state === 'active'
    ch.state = 'dead'
    const peer = ch.peer
    peer.pending.delete(ch)
    if (ch.helloTimer !== undefined) clearTimeout(ch.helloTimer)
    if (ch.pumpTimer !== undefined) clearTimeout(ch.pumpTimer)
    ch.helloTimer = undefined
    ch.pumpTimer = undefined
    ch.queue.clear()
    ch.queuedBytes = 0
    if (ch.stream.status === 'open') {
      try { ch.stream.abort(new Error(reason)) } catch { /* already gone */ }
    }
    if (wasActive && peer.active === ch) {
      peer.active = undefined
      peer.needDrain = false
      this.log.info({ peer: peer.site, reason }, 'peer down')
      this.callHandler('peerDown', peer.site)
    }
    if (redial && peer.active === undefined) this.retryLater(peer)
  }

  private callHandler(what: 'peerUp' | 'peerDown' | 'drain', site: string): void {
    try {
      this.handler?.[what](site)
    } catch (err) {
      this.log.error({ peer: site, err }, `network handler ${what} threw`)
    }
  }

  // ---- outbound --------------------------------------------------------------------------------

  /** Move due frames to the stream, honouring its backpressure and the emulated latency. */
  private pump(ch: Channel): void {
    if (ch.state !== 'active' || ch.pumpTimer !== undefined) return
    const now = this.opts.clock.nowMs()
    // Small frames are coalesced into one stream write: each write costs a Yamux frame and a
    // Noise seal, which dominate for the engine's typical sub-KiB frames.
    const batch: Uint8Array[] = []
    let batchBytes = 0
    const flush = (): boolean => {
      if (batch.length === 0) return true
      const data = batch.length === 1 ? batch[0]! : concat(batch, batchBytes)
      batch.length = 0
      batchBytes = 0
      try {
        ch.stream.send(data)
        return true
      } catch (err) {
        this.kill(ch, `stream send failed: ${errorMessages(err)}`)
        return false
      }
    }
    while (ch.queue.length > 0) {
      if (ch.stream.writableNeedsDrain) break // its 'drain' event calls pump again
      const head = ch.queue.peek()!
      if (head.dueAtMs > now) {
        ch.pumpTimer = setTimeout(() => {
          ch.pumpTimer = undefined
          this.pump(ch)
        }, Math.max(1, Math.ceil(head.dueAtMs - now)))
        break
      }
      ch.queue.shift()
      ch.queuedBytes -= head.encoded.byteLength
      batch.push(head.encoded)
      batchBytes += head.encoded.byteLength
      if (batchBytes >= COALESCE_BYTES && !flush()) return
    }
    if (!flush()) return
    const peer = ch.peer
    if (peer.needDrain && ch.queuedBytes <= this.opts.highWaterBytes / 2) {
      peer.needDrain = false
      this.callHandler('drain', peer.site)
    }
  }

  // ---- dialing ---------------------------------------------------------------------------------

  private retryLater(peer: PeerState): void {
    const delay = peer.backoffMs
    peer.backoffMs = Math.min(peer.backoffMs * 2, this.opts.maxDialIntervalMs)
    this.scheduleDial(peer, delay)
  }

  private scheduleDial(peer: PeerState, delayMs: number): void {
    if (this.stopped || peer.addrs.length === 0 || peer.active !== undefined || peer.dialing || peer.dialTimer !== undefined) return
    peer.dialTimer = setTimeout(() => {
      peer.dialTimer = undefined
      void this.dial(peer)
    }, delayMs)
  }

  private async dial(peer: PeerState): Promise<void> {
    if (this.stopped || peer.active !== undefined || peer.dialing || peer.pending.size > 0) return
    peer.dialing = true
    let attached = false
    try {
      const signal = this.abort.signal
      const connection = await this.node.dial(peer.addrs, { signal })
      if (this.stopped || peer.active !== undefined) return
      const stream = await connection.newStream(REPLICATION_PROTOCOL, { signal })
      if (this.stopped || peer.active !== undefined) {
        stream.abort(new Error('not needed any more'))
        return
      }
      peer.dialing = false
      this.attach(peer, stream, connection, this.peerId)
      attached = true
    } catch (err) {
      if (!this.stopped) this.log.debug({ peer: peer.site, err: errorMessages(err) }, 'dial failed')
    } finally {
      peer.dialing = false
      // An attached stream redials (if needed) when it dies; a failed dial backs off here.
      if (!attached && peer.active === undefined && peer.pending.size === 0) this.retryLater(peer)
    }
  }
}

/** Deny everything that is not on the allow-list, at every hook libp2p offers. */
function allowListGater(allowed: Set<string>, log: Logger): ConnectionGater {
  const deny = (hook: string, peer: PeerId | string | undefined): boolean => {
    const id = peer === undefined ? undefined : peer.toString()
    if (id !== undefined && allowed.has(id)) return false
    log.warn({ hook, peerId: id }, 'connection refused: peer not in the allow-list')
    return true
  }
  return {
    denyDialPeer: (peerId) => deny('dial', peerId),
    // Addresses without /p2p/ could reach anyone; Causeway never dials those.
    denyDialMultiaddr: (ma: Multiaddr) => deny('dial-multiaddr', peerIdOfMultiaddr(ma)),
    denyInboundEncryptedConnection: (peerId) => deny('inbound-encrypted', peerId),
    denyOutboundEncryptedConnection: (peerId) => deny('outbound-encrypted', peerId),
    denyInboundUpgradedConnection: (peerId) => deny('inbound-upgraded', peerId),
    denyOutboundUpgradedConnection: (peerId) => deny('outbound-upgraded', peerId),
    denyInboundRelayReservation: () => true,
    denyOutboundRelayedConnection: () => true,
    denyInboundRelayedConnection: () => true,
  }
}

/**
 * Start a libp2p node (TCP + Noise + Yamux, optional pnet PSK) listening on `listen`, with an
 * allow-list gater, and return it as a NetworkAdapter for openSite. Listening starts here so
 * `addrs` is known (port 0 resolved) before the site opens; dialing starts in start().
 */
export function libp2pNetwork(options: Libp2pNetworkOptions): Promise<Libp2pNetwork> {
  return createLibp2pNetwork(options, {})
}

/** Internal seams, not part of the public API (tests swap in @libp2p/pnet to prove wire compatibility). */
export interface NetworkInternals {
  /** Builds the connectionProtector from the swarm key file's bytes (default: pskProtector). */
  protector?: (psk: Uint8Array) => () => ConnectionProtector
}

export async function createLibp2pNetwork(options: Libp2pNetworkOptions, internals: NetworkInternals): Promise<Libp2pNetwork> {
  const opts = resolveOptions(options)
  const protector = internals.protector ?? ((psk: Uint8Array) => pskProtector({ psk }))
  const privateKey: PrivateKey = opts.privateKey === undefined ? await generateKeyPair('Ed25519') : await loadOrCreatePrivateKey(opts.privateKey)
  const peerId = peerIdFromPrivateKey(privateKey).toString()
  const psk = opts.psk === undefined ? undefined : await readSwarmKeyFile(opts.psk)
  const allowed = new Set(opts.peers.map((p) => p.peerId))
  let node: Libp2p
  try {
    node = await createLibp2p({
      privateKey,
      addresses: { listen: opts.listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Our own pnet protector: @libp2p/pnet's WASM cipher crashes the process after large writes (issue #8).
      ...(psk === undefined ? {} : { connectionProtector: protector(psk) }),
      connectionGater: allowListGater(allowed, opts.logger),
      connectionManager: {
        // Each peer needs one connection; leave room for redials overlapping stale sockets.
        maxConnections: 4 * opts.peers.length + 8,
        maxIncomingPendingConnections: 2 * opts.peers.length + 4,
        dialTimeout: 10_000,
      },
    })
  } catch (err) {
    const code = errorCode(err)
    const msg = errorMessages(err)
    if (code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(msg)) {
      throw new CausewayError('ADDRESS_IN_USE', `cannot listen on ${opts.listen.join(', ')}: address already in use`, { cause: err, details: { listen: opts.listen } })
    }
    throw new CausewayError('INVALID_OPTIONS', `cannot start libp2p on ${opts.listen.join(', ')}: ${msg}`, { cause: err })
  }
  return new Libp2pNetworkImpl(node, opts, peerId, allowed)
}
