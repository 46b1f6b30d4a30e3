import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { CausewayError, isSiteId, SITE_ID_RE } from '@causeway/core'
import type { Clock, Logger } from '@causeway/core'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_MAX_FRAME_BYTES } from './frame.js'

export interface Libp2pPeerOptions {
  /** The peer's site id. */
  site: string
  /** Where to dial it; each ends with /p2p/<peerId>. Empty: never dial, only accept its connections. */
  addrs?: string[]
  /** The peer's PeerId, when `addrs` is empty (or to double-check the addresses). */
  peerId?: string
  /** This site sends writes to the peer (default true). */
  send?: boolean
  /** This site accepts writes from the peer (default true). */
  receive?: boolean
}

export interface Libp2pNetworkOptions {
  /** Multiaddrs to listen on (default ['/ip4/127.0.0.1/tcp/0']). */
  listen?: string[]
  /** Path of the private key file; created (Ed25519, mode 0600) if missing. Omitted: an ephemeral key. */
  privateKey?: string
  /** The allow-list: only these peers may connect, and only these are dialed. */
  peers?: Libp2pPeerOptions[]
  /** Path of a libp2p pnet swarm key file: only nodes holding the same key can even handshake. */
  psk?: string
  /** Emulated one-way WAN latency added to every outbound frame (ms), for all peers or per site. */
  latencyMs?: number | Record<string, number>
  /** Hard cap on one frame, both directions (default 4 MiB). */
  maxFrameBytes?: number
  /** send() returns false above this many queued outbound bytes per peer (default 4 MiB). */
  highWaterBytes?: number
  /** First reconnect delay (default 250 ms); doubles after each failure up to maxDialIntervalMs. */
  dialIntervalMs?: number
  /** Reconnect backoff cap (default 5000 ms). */
  maxDialIntervalMs?: number
  /** A new stream must complete its hello within this time (default 10 000 ms). */
  helloTimeoutMs?: number
  /** Structured log sink (pino-compatible); default silent. */
  logger?: Logger
  /**
   * Time source of the emulated latency's delivery deadlines (default: performance.now, which is
   * monotonic, so a wall-clock jump cannot stall a link). Only `latencyMs` depends on it.
   */
  clock?: Clock
}

export interface ResolvedPeer {
  site: string
  peerId: string
  addrs: Multiaddr[]
  send: boolean
  receive: boolean
  latencyMs: number
}

export interface ResolvedOptions {
  listen: string[]
  privateKey: string | undefined
  psk: string | undefined
  peers: ResolvedPeer[]
  maxFrameBytes: number
  highWaterBytes: number
  dialIntervalMs: number
  maxDialIntervalMs: number
  helloTimeoutMs: number
  logger: Logger
  clock: Clock
}


const KNOWN_OPTIONS = new Set(['listen', 'privateKey', 'peers', 'psk', 'latencyMs', 'maxFrameBytes', 'highWaterBytes', 'dialIntervalMs', 'maxDialIntervalMs', 'helloTimeoutMs', 'logger', 'clock'])
const KNOWN_PEER_OPTIONS = new Set(['site', 'addrs', 'peerId', 'send', 'receive'])

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} }

function bad(message: string): CausewayError {
  return new CausewayError('INVALID_OPTIONS', `libp2pNetwork: ${message}`)
}

function positiveInt(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw bad(`${name} must be a positive integer, got ${String(v)}`)
  return v
}

function latency(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 60_000) throw bad(`${name} must be a number of ms in [0, 60000], got ${String(v)}`)
  return v
}

/** The PeerId at the end of a multiaddr (/p2p/<id>), if any. */
export function peerIdOfMultiaddr(ma: Multiaddr): string | undefined {
  let id: string | undefined
  for (const c of ma.getComponents()) {
    if (c.name === 'p2p' && c.value !== undefined) id = c.value
  }
  return id
}

/** Validate options up front so a typo fails at startup, not at the first dial. */
export function resolveOptions(options: Libp2pNetworkOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw bad('options must be an object')
  for (const k of Object.keys(options)) if (!KNOWN_OPTIONS.has(k)) throw bad(`unknown option "${k}"`)
  const listen = options.listen ?? ['/ip4/127.0.0.1/tcp/0']
  if (!Array.isArray(listen) || listen.some((a) => typeof a !== 'string')) throw bad('listen must be an array of multiaddr strings')
  for (const a of listen) {
    try { multiaddr(a) } catch (err) { throw bad(`listen address "${a}" is not a multiaddr: ${(err as Error).message}`) }
  }
  if (options.privateKey !== undefined && (typeof options.privateKey !== 'string' || options.privateKey === '')) throw bad('privateKey must be a file path')
  if (options.psk !== undefined && (typeof options.psk !== 'string' || options.psk === '')) throw bad('psk must be a file path')
  const rawPeers = options.peers ?? []
  if (!Array.isArray(rawPeers)) throw bad('peers must be an array')
  const lat = options.latencyMs
  if (lat !== undefined && typeof lat !== 'number' && (typeof lat !== 'object' || lat === null)) throw bad('latencyMs must be a number or a record of site -> ms')
  const peers: ResolvedPeer[] = []
  const sites = new Set<string>()
  const ids = new Set<string>()
  rawPeers.forEach((p, i) => {
    const where = `peers[${i}]`
    if (typeof p !== 'object' || p === null) throw bad(`${where} must be an object`)
    for (const k of Object.keys(p)) if (!KNOWN_PEER_OPTIONS.has(k)) throw bad(`unknown option "${where}.${k}"`)
    if (!isSiteId(p.site)) throw bad(`${where}.site must match ${SITE_ID_RE}, got ${JSON.stringify(p.site)}`)
    if (sites.has(p.site)) throw bad(`${where}.site "${p.site}" is listed twice`)
    sites.add(p.site)
    const addrStrings = p.addrs ?? []
    if (!Array.isArray(addrStrings) || addrStrings.some((a) => typeof a !== 'string')) throw bad(`${where}.addrs must be an array of multiaddr strings`)
    let peerId = p.peerId
    if (peerId !== undefined) {
      try { peerIdFromString(peerId) } catch { throw bad(`${where}.peerId "${String(peerId)}" is not a PeerId`) }
    }
    const addrs: Multiaddr[] = []
    for (const a of addrStrings) {
      let ma: Multiaddr
      try { ma = multiaddr(a) } catch (err) { throw bad(`${where}.addrs entry "${a}" is not a multiaddr: ${(err as Error).message}`) }
      const id = peerIdOfMultiaddr(ma)
      if (id === undefined) throw bad(`${where}.addrs entry "${a}" must end with /p2p/<peerId>`)
      if (peerId !== undefined && id !== peerId) throw bad(`${where}.addrs entry "${a}" names PeerId ${id}, expected ${peerId}`)
      try { peerIdFromString(id) } catch { throw bad(`${where}.addrs entry "${a}" has an invalid PeerId`) }
      peerId = id
      addrs.push(ma)
    }
    if (peerId === undefined) throw bad(`${where} needs addrs ending with /p2p/<peerId> or a peerId`)
    if (ids.has(peerId)) throw bad(`${where}: PeerId ${peerId} is configured for two sites`)
    ids.add(peerId)
    for (const k of ['send', 'receive'] as const) {
      if (p[k] !== undefined && typeof p[k] !== 'boolean') throw bad(`${where}.${k} must be a boolean`)
    }
    let latencyMs = 0
    if (typeof lat === 'number') latencyMs = latency('latencyMs', lat)
    else if (lat !== undefined && Object.prototype.hasOwnProperty.call(lat, p.site)) latencyMs = latency(`latencyMs.${p.site}`, lat[p.site])
    peers.push({ site: p.site, peerId, addrs, send: p.send ?? true, receive: p.receive ?? true, latencyMs })
  })
  if (lat !== undefined && typeof lat === 'object') {
    for (const k of Object.keys(lat)) if (!sites.has(k)) throw bad(`latencyMs names unknown peer site "${k}"`)
  }
  const dialIntervalMs = positiveInt('dialIntervalMs', options.dialIntervalMs, 250)
  const maxDialIntervalMs = positiveInt('maxDialIntervalMs', options.maxDialIntervalMs, Math.max(5000, dialIntervalMs))
  if (maxDialIntervalMs < dialIntervalMs) throw bad('maxDialIntervalMs must be >= dialIntervalMs')
  const logger = options.logger ?? silent
  if (options.clock !== undefined && typeof options.clock?.nowMs !== 'function') throw bad('clock must have a nowMs() method')
  const clock: Clock = options.clock ?? { nowMs: () => performance.now() }
  return {
    listen,
    privateKey: options.privateKey,
    psk: options.psk,
    peers,
    maxFrameBytes: positiveInt('maxFrameBytes', options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES),
    highWaterBytes: positiveInt('highWaterBytes', options.highWaterBytes, 4 * 1024 * 1024),
    dialIntervalMs,
    maxDialIntervalMs,
    helloTimeoutMs: positiveInt('helloTimeoutMs', options.helloTimeoutMs, 10_000),
    logger,
    clock,
  }
}
