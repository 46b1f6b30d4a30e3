import type { Logger, OpenSiteOptions } from './api.js'
import { systemClock } from './clock.js'
import { isTimers, systemTimers } from './timers.js'
import { validateConflicts, type Resolver } from './conflict.js'
import { configDigest } from './config.js'
import { validateScopes, type Scopes } from './scopes.js'
import { CausewayError } from './errors.js'
import { isSiteId, SITE_ID_RE } from './ids.js'
import {
  CACHE_ENTRIES_DEFAULT,
  CACHE_ENTRIES_MIN,
  FRAME_OVERHEAD_BYTES,
  HEARTBEAT_MS_DEFAULT,
  HEARTBEAT_MS_MIN,
  MAX_ENTRY_BYTES,
  MAX_VALUE_BYTES_CEILING,
  MAX_VALUE_BYTES_DEFAULT,
  SHARDS_DEFAULT,
  SHARDS_MAX,
  MAX_CLOCK_SKEW_MS_DEFAULT,
  RECOVERY_TIMEOUT_MS_DEFAULT,
  BOOTSTRAP_TIMEOUT_MS_DEFAULT,
  OFFLINE_HORIZON_MS_DEFAULT,
} from './limits.js'
import type { NetworkAdapter } from './network.js'
import { isStorageOption, type StorageOption } from './storage/index.js'
import type { Clock, Timers } from './types.js'

/** openSite's options, validated and with their defaults filled in. */

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

export interface ValidOptions {
  id: string
  dir: string | undefined
  shards: number
  resolver: Resolver
  fsync: boolean
  network: NetworkAdapter | undefined
  maxValueBytes: number
  storage: StorageOption
  clock: Clock
  timers: Timers
  cacheEntries: number
  heartbeatMs: number
  logger: Logger
  ttl: Record<string, number>
  maxClockSkewMs: number
  recoveryTimeoutMs: number
  bootstrap: string | undefined
  bootstrapTimeoutMs: number
  offlineHorizonMs: number
  scopes: Scopes
  /** Digest of `conflicts` and `scopes` (config.ts), compared with every peer at hello. */
  configDigest: string
}

export function validateOptions(o: unknown): ValidOptions {
  const bad = (m: string): never => {
    throw new CausewayError('INVALID_OPTIONS', m)
  }
  if (typeof o !== 'object' || o === null) return bad('openSite needs an options object')
  const x = o as OpenSiteOptions
  if (!isSiteId(x.id)) bad(`site id must match ${SITE_ID_RE}, got ${JSON.stringify(x.id)}`)
  if (x.dir !== undefined && (typeof x.dir !== 'string' || x.dir.length === 0)) bad('dir must be a non-empty string')
  const shards = x.shards ?? SHARDS_DEFAULT
  if (!Number.isInteger(shards) || shards < 1 || shards > SHARDS_MAX) bad(`shards must be an integer in 1..${SHARDS_MAX}, got ${String(x.shards)}`)
  const durability = x.durability ?? 'fsync'
  if (durability !== 'fsync' && durability !== 'relaxed') bad(`durability must be 'fsync' or 'relaxed'`)
  const maxValueBytes = x.maxValueBytes ?? MAX_VALUE_BYTES_DEFAULT
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > MAX_VALUE_BYTES_CEILING) bad(`maxValueBytes must be an integer in 1..${MAX_VALUE_BYTES_CEILING}`)
  const net = x.network
  if (net !== undefined && (typeof net !== 'object' || net === null || typeof net.start !== 'function' || typeof net.send !== 'function' || typeof net.peers !== 'function')) {
    bad('network must be a network adapter (from @causeway/sim or @causeway/libp2p)')
  }
  if (net?.maxFrameBytes !== undefined && Math.min(maxValueBytes + FRAME_OVERHEAD_BYTES, MAX_ENTRY_BYTES) > net.maxFrameBytes - FRAME_OVERHEAD_BYTES) {
    bad(`maxValueBytes (${maxValueBytes}) does not fit the network's maxFrameBytes (${net.maxFrameBytes}): raise maxFrameBytes to at least ${Math.min(maxValueBytes + FRAME_OVERHEAD_BYTES, MAX_ENTRY_BYTES) + FRAME_OVERHEAD_BYTES}`)
  }
  const storageOpt = x.storage ?? 'level'
  if (!isStorageOption(storageOpt)) bad(`storage must be 'level', 'memory' or a factory`)
  const cacheEntries = x.cacheEntries ?? CACHE_ENTRIES_DEFAULT
  if (!Number.isInteger(cacheEntries) || cacheEntries < CACHE_ENTRIES_MIN) bad(`cacheEntries must be an integer >= ${CACHE_ENTRIES_MIN}`)
  const heartbeatMs = x.heartbeatMs ?? HEARTBEAT_MS_DEFAULT
  if (typeof heartbeatMs !== 'number' || !(heartbeatMs >= HEARTBEAT_MS_MIN)) bad(`heartbeatMs must be >= ${HEARTBEAT_MS_MIN}`)
  const resolver: Resolver = validateConflicts(x.conflicts)
  const scopes = validateScopes(x.scopes)
  if (x.clock !== undefined && typeof x.clock?.nowMs !== 'function') bad('clock must have nowMs()')
  if (x.timers !== undefined && !isTimers(x.timers)) bad('timers must have after() and every()')
  const ttl = x.ttl ?? {}
  if (typeof ttl !== 'object' || ttl === null) bad('ttl must be an object of prefix -> ms')
  for (const [p, ms] of Object.entries(ttl)) if (typeof ms !== 'number' || !(ms > 0)) bad(`ttl['${p}'] must be a number of ms > 0`)
  const maxClockSkewMs = x.maxClockSkewMs ?? MAX_CLOCK_SKEW_MS_DEFAULT
  if (!Number.isSafeInteger(maxClockSkewMs) || maxClockSkewMs < 0 || maxClockSkewMs > 366 * 24 * 3600_000) bad('maxClockSkewMs must be an integer number of ms in 0..1 year')
  const recoveryTimeoutMs = x.recoveryTimeoutMs ?? RECOVERY_TIMEOUT_MS_DEFAULT
  if (typeof recoveryTimeoutMs !== 'number' || !(recoveryTimeoutMs > 0)) bad('recoveryTimeoutMs must be a number of ms > 0')
  if (x.bootstrap !== undefined) {
    if (!isSiteId(x.bootstrap)) bad(`bootstrap must be a site id, got ${JSON.stringify(x.bootstrap)}`)
    if (x.bootstrap === x.id) bad('a site cannot bootstrap from itself')
    if (net === undefined) bad('bootstrap needs a network')
  }
  const bootstrapTimeoutMs = x.bootstrapTimeoutMs ?? BOOTSTRAP_TIMEOUT_MS_DEFAULT
  if (typeof bootstrapTimeoutMs !== 'number' || !(bootstrapTimeoutMs > 0)) bad('bootstrapTimeoutMs must be a number of ms > 0')
  const offlineHorizonMs = x.offlineHorizonMs ?? OFFLINE_HORIZON_MS_DEFAULT
  if (typeof offlineHorizonMs !== 'number' || !(offlineHorizonMs > 0)) bad('offlineHorizonMs must be a number of ms > 0')
  return {
    offlineHorizonMs,
    bootstrap: x.bootstrap,
    bootstrapTimeoutMs,
    id: x.id,
    dir: x.dir,
    shards,
    resolver,
    fsync: durability === 'fsync',
    network: net,
    maxValueBytes,
    storage: storageOpt,
    clock: x.clock ?? systemClock,
    timers: x.timers ?? systemTimers,
    cacheEntries,
    heartbeatMs,
    logger: x.logger ?? silentLogger,
    ttl,
    maxClockSkewMs,
    recoveryTimeoutMs,
    scopes,
    configDigest: configDigest(x.conflicts, scopes),
  }
}
