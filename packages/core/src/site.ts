import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IndexDefinition, Logger, OpenSiteOptions, ScanOptions, Session, SessionOptions, ShardDb, Site, StorageFactory, WriteOp } from './api.js'
import { LamportClock, systemClock } from './clock.js'
import { assertKey, decodeUntrusted, encode, encodeValue, hash32 } from './codec.js'
import { observationOf, validateConflicts, viewOf, type KeyState, type Resolver } from './conflict.js'
import { CausalContext, type Dot, type StreamId } from './context.js'
import { decodeEntry, encodeEntry, MAX_OPS_PER_WRITE, type WriteEntry, type WriteEntryOp } from './entry.js'
import { CausewayError, invariant } from './errors.js'
import type { NetworkAdapter, NetworkHandler, PeerConfig, SiteProgress } from './network.js'
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, type Frame, type Report, type Vector } from './protocol.js'
import { K, logKey, logPrefix, Shard, type ShardHost } from './shard.js'
import type { Clock, ConflictMode, Entry, PeerState, SiteStatus, Value, Version } from './types.js'

const SITE_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/
const INDEX_NAME_RE = /^[a-z0-9_-]{1,64}$/
const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
/** Entries kept in memory per stream for live relaying and applying without a log read. */
const RING_ENTRIES = 4096
const RING_BYTES = 8 * 1024 * 1024
/** Bounds of one writes frame and of one apply round. */
const FRAME_ENTRIES = 1024
const FRAME_BYTES = 1024 * 1024
const ROUND_ENTRIES = 2048
const ROUND_BYTES = 32 * 1024 * 1024
/** Frames from one peer waiting to be processed; beyond this they are dropped and nacked. */
const MAX_INBOUND_FRAMES = 256
/** Limit on the encoded size of one write entry (so it always fits one frame of any transport). */
const MAX_ENTRY_BYTES = 3 * 1024 * 1024

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

interface RingItem {
  bytes: Uint8Array
  entry: WriteEntry | undefined
}

interface StreamState {
  id: StreamId
  origin: string
  logShard: number
  /** Contiguous prefix durably in the log (relayable). */
  rv: number
  /** Contiguous prefix accepted for logging (>= rv). */
  accepted: number
  /** Contiguous prefix applied (visible). */
  av: number
  /** Applied seqs above av (out-of-order completion). */
  done: Set<number>
  /** Next seq the applier dispatches (remote streams). */
  next: number
  /** Log trimmed up to here. */
  gc: number
  /** Recent entries, slot = seq % RING_ENTRIES (streams are gapless, so no two live seqs collide). */
  ring: Array<(RingItem & { seq: number }) | undefined>
  ringBytes: number
  /** Entries read for the applier and not applied yet (starting at `next`), bounded by a round's share. */
  lookahead: Array<{ seq: number } & RingItem>
}

interface PeerLink {
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
}

interface ReadyLocal {
  entry: WriteEntry
  resolve: () => void
  reject: (e: unknown) => void
}

function defaultStorage(kind: 'level' | 'memory'): StorageFactory {
  return (index, dir) => {
    if (kind === 'memory') {
      return new MemoryLevelCtor!({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
    }
    return new ClassicLevelCtor!(join(dir!, `shard-${index}`), { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
  }
}

type LevelCtor = new (...args: unknown[]) => unknown
let ClassicLevelCtor: LevelCtor | undefined
let MemoryLevelCtor: LevelCtor | undefined
async function loadLevels(kind: 'level' | 'memory'): Promise<void> {
  if (kind === 'level' && !ClassicLevelCtor) ClassicLevelCtor = (await import('classic-level')).ClassicLevel as unknown as LevelCtor
  if (kind === 'memory' && !MemoryLevelCtor) MemoryLevelCtor = (await import('memory-level')).MemoryLevel as unknown as LevelCtor
}

interface ValidOptions {
  id: string
  dir: string | undefined
  shards: number
  resolver: Resolver
  fsync: boolean
  network: NetworkAdapter | undefined
  maxValueBytes: number
  storage: StorageFactory
  storageKind: 'level' | 'memory' | 'custom'
  clock: Clock
  cacheEntries: number
  heartbeatMs: number
  logger: Logger
  ttl: Record<string, number>
}

function validateOptions(o: unknown): ValidOptions {
  const bad = (m: string): never => {
    throw new CausewayError('INVALID_OPTIONS', m)
  }
  if (typeof o !== 'object' || o === null) return bad('openSite needs an options object')
  const x = o as OpenSiteOptions
  if (typeof x.id !== 'string' || !SITE_ID_RE.test(x.id)) bad(`site id must match ${SITE_ID_RE}, got ${JSON.stringify(x.id)}`)
  if (x.dir !== undefined && (typeof x.dir !== 'string' || x.dir.length === 0)) bad('dir must be a non-empty string')
  const shards = x.shards ?? 4
  if (!Number.isInteger(shards) || shards < 1 || shards > 64) bad(`shards must be an integer in 1..64, got ${String(x.shards)}`)
  const durability = x.durability ?? 'fsync'
  if (durability !== 'fsync' && durability !== 'relaxed') bad(`durability must be 'fsync' or 'relaxed'`)
  const maxValueBytes = x.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > 64 * 1024 * 1024) bad('maxValueBytes must be an integer in 1..64 MiB')
  const net = x.network
  if (net !== undefined && (typeof net !== 'object' || net === null || typeof net.start !== 'function' || typeof net.send !== 'function' || typeof net.peers !== 'function')) {
    bad('network must be a network adapter (from @causeway/sim or @causeway/libp2p)')
  }
  if (net?.maxFrameBytes !== undefined && Math.min(maxValueBytes + 64 * 1024, MAX_ENTRY_BYTES) > net.maxFrameBytes - 64 * 1024) {
    bad(`maxValueBytes (${maxValueBytes}) does not fit the network's maxFrameBytes (${net.maxFrameBytes}): raise maxFrameBytes to at least ${Math.min(maxValueBytes + 64 * 1024, MAX_ENTRY_BYTES) + 64 * 1024}`)
  }
  const storageOpt = x.storage ?? 'level'
  if (storageOpt !== 'level' && storageOpt !== 'memory' && typeof storageOpt !== 'function') bad(`storage must be 'level', 'memory' or a factory`)
  const cacheEntries = x.cacheEntries ?? 100_000
  if (!Number.isInteger(cacheEntries) || cacheEntries < 16) bad('cacheEntries must be an integer >= 16')
  const heartbeatMs = x.heartbeatMs ?? 1000
  if (typeof heartbeatMs !== 'number' || !(heartbeatMs >= 10)) bad('heartbeatMs must be >= 10')
  const resolver: Resolver = validateConflicts(x.conflicts)
  if (x.clock !== undefined && typeof x.clock?.nowMs !== 'function') bad('clock must have nowMs()')
  const ttl = x.ttl ?? {}
  if (typeof ttl !== 'object' || ttl === null) bad('ttl must be an object of prefix -> ms')
  for (const [p, ms] of Object.entries(ttl)) if (typeof ms !== 'number' || !(ms > 0)) bad(`ttl['${p}'] must be a number of ms > 0`)
  return {
    id: x.id,
    dir: x.dir,
    shards,
    resolver,
    fsync: durability === 'fsync',
    network: net,
    maxValueBytes,
    storage: typeof storageOpt === 'function' ? storageOpt : defaultStorage(storageOpt),
    storageKind: typeof storageOpt === 'function' ? 'custom' : storageOpt,
    clock: x.clock ?? systemClock,
    cacheEntries,
    heartbeatMs,
    logger: x.logger ?? silentLogger,
    ttl,
  }
}

/** Open a site. Validates, opens the shards, recovers, then joins the network. */
export async function createSite(options: OpenSiteOptions): Promise<Site> {
  const o = validateOptions(options)
  if (o.storageKind !== 'custom') await loadLevels(o.storageKind as 'level' | 'memory')
  let dir = o.dir
  if (o.storageKind === 'level') {
    if (dir === undefined) dir = mkdtempSync(join(tmpdir(), `causeway-${o.id}-`))
    mkdirSync(dir, { recursive: true })
  }
  const dbs: ShardDb[] = []
  try {
    for (let i = 0; i < o.shards; i++) {
      const db = o.storage(i, dir)
      dbs.push(db)
      await db.open()
    }
  } catch (e) {
    await Promise.allSettled(dbs.map((d) => d.close()))
    const cause = e as { code?: string; cause?: { code?: string } }
    if (cause?.cause?.code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
      throw new CausewayError('LOCKED', `${dir} is already opened by another site`, { cause: e })
    }
    throw new CausewayError('STORAGE_ERROR', `cannot open the shards under ${dir}`, { cause: e })
  }
  if (dir !== undefined && o.storageKind === 'level') {
    const metaPath = join(dir, 'causeway.json')
    if (existsSync(metaPath)) {
      let meta: { id?: unknown; shards?: unknown }
      try {
        meta = JSON.parse(readFileSync(metaPath, 'utf8'))
      } catch (e) {
        await Promise.allSettled(dbs.map((d) => d.close()))
        throw new CausewayError('STORAGE_ERROR', `${metaPath} is corrupt`, { cause: e })
      }
      if (meta.id !== o.id || meta.shards !== o.shards) {
        await Promise.allSettled(dbs.map((d) => d.close()))
        throw new CausewayError('INVALID_OPTIONS', `${dir} holds site '${String(meta.id)}' with ${String(meta.shards)} shards; reopen it with the same id and shards`)
      }
    } else {
      writeFileSync(metaPath, JSON.stringify({ format: 1, id: o.id, shards: o.shards }) + '\n')
    }
  }
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

class SiteImpl implements Site, ShardHost, NetworkHandler {
  readonly id: string
  readonly siteId: string
  readonly clock: LamportClock
  readonly fsync: boolean
  readonly modeOf: Resolver
  private readonly shards: Shard[]
  private readonly streams = new Map<StreamId, StreamState>()
  private readonly localSeq: number[]
  private readonly peers = new Map<string, PeerLink>()
  private readonly indexes = new Map<string, IndexDefinition>()
  private readonly listeners = new Set<(keys: string[], origin: string) => void>()
  private waiters: Array<{ deps: Dot[]; resolve: () => void }> = []
  private localReady: ReadyLocal[] = []
  private applying = false
  private rounds = 0
  private applyAgain = false
  private closed = false
  private failed: Error | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private beats = 0
  private epoch = 0
  /** Newest applied-vector report of every other site (gossiped in heartbeats). */
  private readonly reports = new Map<string, { site: string; epoch: number; av: Map<StreamId, number> }>()
  private readonly log: Logger
  private readonly wall: Clock
  /** ttl rules, longest prefix first. */
  private readonly ttlRules: Array<[string, number]>

  constructor(private readonly o: ValidOptions, dbs: ShardDb[]) {
    this.id = o.id
    this.siteId = o.id
    this.fsync = o.fsync
    this.modeOf = o.resolver
    this.log = o.logger
    this.wall = o.clock
    this.clock = new LamportClock(o.id, o.clock)
    this.ttlRules = Object.entries(o.ttl).sort((a, b) => b[0].length - a[0].length)
    this.shards = dbs.map((db, i) => new Shard(i, db, this, o.cacheEntries))
    this.localSeq = dbs.map(() => 0)
  }

  get maxValueBytes(): number {
    return this.o.maxValueBytes
  }

  // ---------------------------------------------------------------- ShardHost

  indexesFor(key: string): IndexDefinition[] {
    if (this.indexes.size === 0) return []
    const out: IndexDefinition[] = []
    for (const d of this.indexes.values()) if (key.startsWith(d.prefix)) out.push(d)
    return out
  }
  allocSeq(shard: number): number {
    return ++this.localSeq[shard]!
  }
  releaseSeq(shard: number, seq: number): void {
    invariant(this.localSeq[shard] === seq, 'sequence numbers released out of order')
    this.localSeq[shard] = seq - 1
  }

  // ---------------------------------------------------------------- streams

  shardOf(key: string): number {
    return hash32(key) % this.shards.length
  }

  private stream(id: StreamId): StreamState {
    let s = this.streams.get(id)
    if (!s) {
      const slash = id.indexOf('/')
      const origin = id.slice(0, slash)
      const logShard = origin === this.id ? Number(id.slice(slash + 1)) : hash32(id) % this.shards.length
      invariant(logShard < this.shards.length, `local stream ${id} beyond the shard count`)
      s = { id, origin, logShard, rv: 0, accepted: 0, av: 0, done: new Set(), next: 1, gc: 0, ring: [], ringBytes: 0, lookahead: [] }
      this.streams.set(id, s)
    }
    return s
  }

  private av(id: StreamId): number {
    return this.streams.get(id)?.av ?? 0
  }

  private ringAdd(s: StreamState, seq: number, bytes: Uint8Array, entry: WriteEntry | undefined): void {
    const slot = seq % RING_ENTRIES
    const old = s.ring[slot]
    if (old) s.ringBytes -= old.bytes.length
    if (s.ringBytes + bytes.length > RING_BYTES) {
      s.ring[slot] = undefined // over budget: this one is read back from the log when needed
      return
    }
    s.ring[slot] = { seq, bytes, entry }
    s.ringBytes += bytes.length
  }

  private ringGet(s: StreamState, seq: number): RingItem | undefined {
    const r = s.ring[seq % RING_ENTRIES]
    return r !== undefined && r.seq === seq ? r : undefined
  }

  private markApplied(s: StreamState, seq: number): void {
    if (seq <= s.av) return
    s.done.add(seq)
    while (s.done.has(s.av + 1)) {
      s.done.delete(s.av + 1)
      s.av++
    }
  }

  /** Read log entries [from, to] of a stream: from the ring when possible, else from its log shard. */
  private async readLog(s: StreamState, from: number, to: number, maxEntries: number, maxBytes: number): Promise<Array<{ seq: number } & RingItem>> {
    const out: Array<{ seq: number } & RingItem> = []
    let bytes = 0
    let seq = from
    while (seq <= to && out.length < maxEntries && bytes < maxBytes) {
      const r = this.ringGet(s, seq)
      if (r) {
        if (out.length > 0 && bytes + r.bytes.length > maxBytes) break // never overshoot a budget
        out.push({ seq, bytes: r.bytes, entry: r.entry })
        bytes += r.bytes.length
        seq++
        continue
      }
      // Fall back to the log for the gap (older than the ring holds).
      const db = this.shards[s.logShard]!.db
      const it = db.iterator({ gte: logKey(s.id, seq), lte: logKey(s.id, to), limit: maxEntries - out.length })
      let got = 0
      try {
        for await (const [k, v] of it as AsyncIterable<[string, Uint8Array]>) {
          const q = Number(k.slice(k.lastIndexOf('!') + 1))
          if (q !== seq) break
          if (out.length > 0 && bytes + v.length > maxBytes) break
          out.push({ seq, bytes: v, entry: undefined })
          bytes += v.length
          seq++
          got++
          if (bytes >= maxBytes || this.ringGet(s, seq)) break
        }
      } finally {
        await it.close()
      }
      if (got === 0 || bytes >= maxBytes || out.length >= maxEntries) break // done, or trimmed/missing
    }
    return out
  }

  // ---------------------------------------------------------------- recovery

  async recover(): Promise<void> {
    const ap: Array<Map<StreamId, number>> = this.shards.map(() => new Map())
    let clockFloor = 0
    for (const sh of this.shards) {
      for await (const [k, v] of sh.db.iterator({ gte: 'm!', lt: 'm"' }) as AsyncIterable<[string, Uint8Array]>) {
        const n = decodeUntrusted(v)
        invariant(typeof n === 'number', `corrupt meta record ${k}`)
        if (k === 'm!clock') clockFloor = Math.max(clockFloor, n)
        else if (k.startsWith('m!gc!')) {
          const s = this.stream(k.slice(5))
          s.gc = Math.max(s.gc, n)
        } else if (k.startsWith('m!ap!')) ap[sh.index]!.set(k.slice(5), n)
      }
    }
    this.clock.observe(clockFloor)
    // Streams are known from their log entries: the last entry's seq is the received prefix.
    for (const sh of this.shards) {
      let from = 'l!'
      for (;;) {
        const first = await sh.db.keys({ gt: from, lt: 'l"', limit: 1 }).all()
        if (first.length === 0) break
        const k = first[0] as string
        const sid = k.slice(2, k.lastIndexOf('!'))
        const last = (await sh.db.keys({ gte: logPrefix(sid), lt: logPrefix(sid) + '\uffff', reverse: true, limit: 1 }).all())[0] as string
        const s = this.stream(sid)
        s.rv = Math.max(s.rv, Number(last.slice(last.lastIndexOf('!') + 1)))
        from = logPrefix(sid) + '\uffff'
      }
    }
    for (const s of this.streams.values()) {
      s.rv = Math.max(s.rv, s.gc)
      s.accepted = s.rv
      s.av = s.gc
      s.next = s.gc + 1
      if (s.origin === this.id) this.localSeq[s.logShard] = s.rv
      let firstUnapplied = 0
      const db = this.shards[s.logShard]!.db
      for await (const [k, v] of db.iterator({ gt: logKey(s.id, s.gc), lte: logKey(s.id, s.rv) }) as AsyncIterable<[string, Uint8Array]>) {
        const seq = Number(k.slice(k.lastIndexOf('!') + 1))
        const entry = decodeEntry(v, this.o.maxValueBytes)
        this.clock.observe(entry.time)
        const dataShards = new Set(entry.ops.map((op) => this.shardOf(op.key)))
        const atomicLocal = s.origin === this.id && dataShards.size === 1 && dataShards.has(s.logShard)
        const applied = atomicLocal || [...dataShards].every((d) => (ap[d]!.get(s.id) ?? 0) >= seq)
        if (applied) this.markApplied(s, seq)
        else {
          if (firstUnapplied === 0) firstUnapplied = seq
          if (s.origin === this.id) this.localReady.push({ entry, resolve: () => {}, reject: () => {} })
        }
      }
      s.next = firstUnapplied === 0 ? s.rv + 1 : firstUnapplied
      if (s.origin === this.id) s.next = s.rv + 1
    }
    if (this.localReady.length > 0 || [...this.streams.values()].some((s) => s.next <= s.rv)) {
      this.kickApply()
      await this.idle(60_000)
    }
  }

  async join(): Promise<void> {
    if (!this.o.network) return
    await this.o.network.start(this.id, this)
    this.heartbeat = setInterval(() => this.onHeartbeat(), this.o.heartbeatMs)
    this.heartbeat.unref?.()
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
    const deps = ctx.depList()
    const atLeast = ctx.maxTime + 1
    // One shard: the write and its log entry commit in one batch and are visible at once.
    // Several shards: log at the coordinator shard, then apply everywhere in one visibility round.
    const single = new Set(ops.map((op) => this.shardOf(op.key))).size === 1
    const sh = this.shards[this.shardOf(ops[0]!.key)]!
    await sh.admit()
    const { entry, bytes } = await new Promise<{ entry: WriteEntry; bytes: Uint8Array }>((resolve, reject) =>
      sh.enqueue({ kind: 'local', ops, deps, atLeastTime: atLeast, logOnly: !single, resolve, reject }),
    )
    const s = this.stream(entry.stream)
    s.rv = s.accepted = entry.seq
    s.next = entry.seq + 1
    this.ringAdd(s, entry.seq, bytes, entry)
    if (single) {
      this.markApplied(s, entry.seq)
      this.afterApplied([entry])
    }
    this.pumpAll()
    if (!single) {
      await new Promise<void>((resolve, reject) => {
        this.localReady.push({ entry, resolve, reject })
        this.kickApply()
      })
    }
    return { version: { time: entry.time, site: entry.site }, dot: [entry.stream, entry.seq] }
  }

  // ---------------------------------------------------------------- apply pipeline

  private kickApply(): void {
    if (this.applying) {
      this.applyAgain = true
      return
    }
    void this.applyLoop()
  }

  private async applyLoop(): Promise<void> {
    this.applying = true
    try {
      do {
        this.applyAgain = false
        const progressed = await this.applyRound()
        if (progressed) this.applyAgain = true
      } while (this.applyAgain && !this.closed && !this.failed)
    } catch (e) {
      this.fail(e)
    } finally {
      this.applying = false
    }
    this.checkWaiters()
  }

  /**
   * One round: every entry whose dependencies are applied (or applied earlier in this round) is
   * staged in its shards; the round becomes visible all at once when every shard has committed.
   */
  private async applyRound(): Promise<boolean> {
    const ready: WriteEntry[] = []
    const localDone: ReadyLocal[] = this.localReady.splice(0, ROUND_ENTRIES)
    for (const l of localDone) ready.push(l.entry)
    const inRound = new Map<StreamId, number>()
    const satisfied = (d: Dot): boolean => this.av(d[0]) >= d[1] || (inRound.get(d[0]) ?? 0) >= d[1]
    let progress = true
    const pendingStreams = [...this.streams.values()].filter((s) => s.origin !== this.id && s.next <= s.rv)
    // Rotate the starting stream each round so a busy stream cannot starve the others of the budget.
    const start = pendingStreams.length > 0 ? this.rounds++ % pendingStreams.length : 0
    const remote = [...pendingStreams.slice(start), ...pendingStreams.slice(0, start)]
    const fetched = new Map<StreamId, Array<{ seq: number } & RingItem>>()
    // Entries fetched in earlier rounds but not applied yet stay in the stream's lookahead buffer,
    // so each entry is read from the log once. Fetching tops buffers up to a per-stream share.
    const share = Math.max(64, Math.floor(ROUND_ENTRIES / Math.max(1, remote.length)))
    const shareBytes = Math.max(1024 * 1024, Math.floor(ROUND_BYTES / Math.max(1, remote.length)))
    for (const s of remote) {
      const buf = s.lookahead
      const have = buf.length
      let bytes = 0
      for (const it of buf) bytes += it.bytes.length
      const from = have > 0 ? buf[have - 1]!.seq + 1 : s.next
      if (have < share && bytes < shareBytes && from <= s.rv) {
        const more = await this.readLog(s, from, s.rv, share - have, shareBytes - bytes)
        for (const it of more) buf.push(it)
      }
      fetched.set(s.id, buf)
    }
    // Repeat passes so that cross-stream dependencies inside the round resolve regardless of order.
    const heads = new Map<StreamId, number>()
    while (progress && ready.length < ROUND_ENTRIES) {
      progress = false
      for (const s of remote) {
        const items = fetched.get(s.id)!
        let h = heads.get(s.id) ?? 0
        while (h < items.length && ready.length < ROUND_ENTRIES) {
          const it = items[h]!
          if (s.done.has(it.seq) || it.seq <= s.av) {
            // Applied before a restart: skip without re-applying.
            h++
            s.next = it.seq + 1
            inRound.set(s.id, it.seq)
            progress = true
            continue
          }
          const entry = it.entry ?? decodeEntry(it.bytes, this.o.maxValueBytes)
          it.entry = entry
          if (!entry.deps.every(satisfied)) break
          h++
          ready.push(entry)
          s.next = it.seq + 1
          inRound.set(s.id, it.seq)
          progress = true
        }
        heads.set(s.id, h)
      }
    }
    for (const [sid, h] of heads) if (h > 0) fetched.get(sid)!.splice(0, h)
    if (ready.length === 0) return false
    // Dispatch: one apply item per (entry, shard); all staged.
    const touched: Array<Set<string>> = this.shards.map(() => new Set())
    const pending: Promise<unknown>[] = []
    for (const e of ready) {
      this.clock.observe(e.time)
      const byShard = new Map<number, WriteEntryOp[]>()
      for (const op of e.ops) {
        const d = this.shardOf(op.key)
        let l = byShard.get(d)
        if (!l) byShard.set(d, (l = []))
        l.push(op)
        touched[d]!.add(op.key)
      }
      for (const [d, ops] of byShard) {
        pending.push(new Promise((resolve, reject) => this.shards[d]!.enqueue({ kind: 'apply', entry: e, ops, stage: true, resolve, reject })))
      }
    }
    try {
      await Promise.all(pending)
    } catch (e) {
      for (const l of localDone) l.reject(e)
      throw e
    }
    // Visible all together.
    for (let d = 0; d < this.shards.length; d++) if (touched[d]!.size > 0) this.shards[d]!.installStaged(touched[d]!)
    for (const e of ready) this.markApplied(this.stream(e.stream), e.seq)
    for (const l of localDone) l.resolve()
    this.afterApplied(ready)
    return true
  }

  private afterApplied(entries: WriteEntry[]): void {
    if (this.listeners.size > 0) {
      for (const e of entries) {
        const keys = e.ops.map((op) => op.key)
        for (const l of this.listeners) {
          try {
            l(keys, e.site)
          } catch (err) {
            this.log.warn({ err }, 'onApplied listener threw')
          }
        }
      }
    }
    this.checkWaiters()
  }

  private checkWaiters(): void {
    if (this.waiters.length === 0) return
    const still: typeof this.waiters = []
    for (const w of this.waiters) {
      if (w.deps.every(([s, q]) => this.av(s) >= q)) w.resolve()
      else still.push(w)
    }
    this.waiters = still
  }

  /** Wait until every dependency is applied here, up to waitMs. */
  async waitForDeps(deps: Dot[], waitMs: number): Promise<boolean> {
    if (deps.every(([s, q]) => this.av(s) >= q)) return true
    if (waitMs <= 0) return false
    return new Promise<boolean>((resolve) => {
      const w = {
        deps,
        resolve: () => {
          clearTimeout(timer)
          resolve(true)
        },
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w)
        resolve(false)
      }, waitMs)
      timer.unref?.()
      this.waiters.push(w)
    })
  }

  private fail(e: unknown): void {
    if (this.failed) return
    this.failed = e instanceof Error ? e : new Error(String(e))
    this.log.error({ err: e }, 'site stopped after a storage failure')
    // Stop replicating: a site that cannot write must not acknowledge anything.
    void this.o.network?.stop().catch(() => {})
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

  // ---------------------------------------------------------------- network handler

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
      }
      this.peers.set(peer, p)
    }
    return p
  }

  private peerConfig(peer: string): PeerConfig | undefined {
    return this.o.network?.peers().find((c) => c.site === peer)
  }

  private send(p: PeerLink, f: Frame): boolean {
    return this.o.network!.send(p.id, encodeFrame(f))
  }

  private rvVector(): Vector {
    const v: Vector = []
    for (const s of this.streams.values()) if (s.rv > 0) v.push([s.id, s.rv])
    return v
  }

  private upstreams(): string[] {
    const out: string[] = []
    for (const p of this.peers.values()) if (p.up && p.helloIn && p.theirSends && this.peerConfig(p.id)?.receive !== false) out.push(p.id)
    return out
  }

  peerUp(peer: string): void {
    if (this.closed) return
    const cfg = this.peerConfig(peer)
    if (!cfg) {
      this.log.warn({ peer }, 'connection from a site that is not a configured peer: ignored')
      return
    }
    const p = this.link(peer)
    p.up = true
    p.helloIn = false
    p.blocked = false
    p.cursor.clear()
    p.everSeen = true
    p.lastSeenAt = this.wall.nowMs()
    this.send(p, { t: 'hello', v: PROTOCOL_VERSION, site: this.id, accepts: cfg.receive, sends: cfg.send, rv: this.rvVector(), ups: this.upstreams() })
    this.broadcastBeat()
  }

  peerDown(peer: string): void {
    const p = this.peers.get(peer)
    if (!p) return
    p.up = false
    p.helloIn = false
    p.blocked = false
    p.cursor.clear()
    if (!this.closed) this.broadcastBeat()
  }

  drain(peer: string): void {
    const p = this.peers.get(peer)
    if (!p) return
    p.blocked = false
    void this.pump(p)
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
  private isIdle(): boolean {
    if (!this.isLocalIdle()) return false
    for (const s of this.streams.values()) if (s.accepted > s.rv) return false
    for (const p of this.peers.values()) {
      if (p.pumping) return false
      if (p.up && p.helloIn && !p.blocked && this.hasSendable(p)) return false
    }
    return true
  }

  frame(peer: string, bytes: Uint8Array): void {
    if (this.closed || this.failed) return
    const cfg = this.peerConfig(peer)
    if (!cfg) return
    const p = this.link(peer)
    p.lastSeenAt = this.wall.nowMs()
    p.everSeen = true
    let f: Frame
    try {
      f = decodeFrame(bytes)
    } catch (e) {
      this.log.warn({ peer, err: (e as Error).message }, 'dropped an invalid frame')
      return
    }
    switch (f.t) {
      case 'hello':
        if (f.v !== PROTOCOL_VERSION || f.site !== peer) {
          this.log.warn({ peer, site: f.site, version: f.v }, 'hello from an unexpected site or protocol version: ignored')
          return
        }
        for (const [sid, q] of f.rv) {
          if (sid.startsWith(this.id + '/') && q > (this.streams.get(sid)?.rv ?? 0)) {
            // The peer holds more of our own writes than we do: our data is older than what we
            // acknowledged (restored from an old backup?). Writing on would reuse sequence numbers
            // the peer already has, so its copies would silently win. Stop and say so.
            this.fail(new CausewayError('STORAGE_ERROR', `site ${this.id} holds stream ${sid} only up to ${this.streams.get(sid)?.rv ?? 0} but peer ${peer} has ${q}: this site's data is older than what it acknowledged; restore it from its peers, not from a backup`))
            return
          }
        }
        p.helloIn = true
        p.theirAccepts = f.accepts
        p.theirSends = f.sends
        if (!f.accepts) p.neverAccepts = true
        p.known = new Map(f.rv)
        p.cursor.clear()
        p.ups = new Set(f.ups)
        void this.pump(p)
        return
      case 'beat':
        for (const [s, q] of f.rv) if ((p.known.get(s) ?? 0) < q) p.known.set(s, q)
        p.ups = new Set(f.ups)
        for (const r of f.reports) {
          if (r.site === this.id) continue
          const cur = this.reports.get(r.site)
          if (!cur || cur.epoch < r.epoch) this.reports.set(r.site, { ...r, av: new Map(r.av) })
        }
        void this.pump(p)
        return
      case 'ack':
        for (const [s, q] of f.rv) if ((p.known.get(s) ?? 0) < q) p.known.set(s, q)
        return
      case 'nack': {
        p.known.set(f.stream, f.have)
        p.cursor.set(f.stream, f.have)
        void this.pump(p)
        return
      }
      case 'writes': {
        if (!cfg.receive) return // one-way link: we do not take writes from this peer
        if (p.inboundDepth >= MAX_INBOUND_FRAMES) {
          this.log.warn({ peer }, 'inbound queue full: frame dropped')
          return // the sender will be nacked on the next gap
        }
        // Frames pipeline: acceptance (stream order, duplicates, gaps) is decided synchronously on
        // arrival, and a stream's log shard commits in FIFO order, so frames need not wait for each
        // other's fsync; concurrent ones share a group commit.
        p.inboundDepth++
        const done = this.receiveWrites(p, f.e).finally(() => {
          p.inboundDepth--
        })
        p.inbound = p.inbound.then(() => done)
        return
      }
    }
  }

  private async receiveWrites(p: PeerLink, raw: Uint8Array[]): Promise<void> {
    if (this.closed || this.failed) return
    const groups = new Map<StreamState, Array<{ seq: number; bytes: Uint8Array; time: number; entry: WriteEntry }>>()
    const nacked = new Set<StreamId>()
    for (const bytes of raw) {
      let entry: WriteEntry
      try {
        if (bytes.length > MAX_ENTRY_BYTES) throw new CausewayError('INVALID_FRAME', 'entry too large')
        // Validates the op values too (the one check of a replicated value: reads trust what is stored).
        entry = decodeEntry(bytes, this.o.maxValueBytes)
      } catch (e) {
        this.log.warn({ peer: p.id, err: (e as Error).message }, 'dropped an invalid write entry')
        continue
      }
      if (entry.site === this.id) continue // our own stream: we are its source of truth
      if ((p.known.get(entry.stream) ?? 0) < entry.seq) p.known.set(entry.stream, entry.seq)
      const s = this.stream(entry.stream)
      if (entry.seq <= s.accepted) continue // duplicate (relays make these normal)
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
    if (groups.size === 0) return
    const acks: Vector = []
    await Promise.all(
      [...groups].map(async ([s, entries]) => {
        try {
          await new Promise<void>((resolve, reject) => this.shards[s.logShard]!.enqueue({ kind: 'log', stream: s.id, entries, resolve, reject }))
        } catch (e) {
          this.fail(e)
          return
        }
        for (const en of entries) this.ringAdd(s, en.seq, en.bytes, en.entry)
        s.rv = Math.max(s.rv, entries[entries.length - 1]!.seq)
        acks.push([s.id, s.rv])
      }),
    )
    if (acks.length > 0 && p.up) this.send(p, { t: 'ack', rv: acks })
    this.kickApply()
    this.pumpAll()
  }

  // ---------------------------------------------------------------- sending

  /** Should stream `s` go to peer p? Not back to its origin, and not when p hears the origin directly. */
  private relays(p: PeerLink, s: StreamState): boolean {
    if (s.origin === p.id) return false
    if (s.origin !== this.id && p.ups.has(s.origin)) return false
    return true
  }

  private canSend(p: PeerLink): boolean {
    return p.up && p.helloIn && p.theirAccepts && !p.blocked && !this.closed && this.peerConfig(p.id)?.send !== false
  }

  private hasSendable(p: PeerLink): boolean {
    if (!this.canSend(p)) return false
    for (const s of this.streams.values()) {
      if (!this.relays(p, s)) continue
      const from = Math.max(p.cursor.get(s.id) ?? 0, p.known.get(s.id) ?? 0)
      if (s.rv > from) return true
    }
    return false
  }

  private pumpAll(): void {
    for (const p of this.peers.values()) if (p.up && p.helloIn) void this.pump(p)
  }

  private async pump(p: PeerLink): Promise<void> {
    if (p.pumping) {
      p.repump = true
      return
    }
    p.pumping = true
    try {
      do {
        p.repump = false
        // Frame budget: ours, and never more than the transport accepts (minus framing overhead).
        const frameBytes = Math.min(FRAME_BYTES, Math.max(64 * 1024, (this.o.network!.maxFrameBytes ?? Infinity) - 64 * 1024))
        while (this.canSend(p)) {
          const batch: Uint8Array[] = []
          const before = new Map(p.cursor)
          let bytes = 0
          for (const s of this.streams.values()) {
            if (batch.length >= FRAME_ENTRIES || bytes >= frameBytes) break
            if (!this.relays(p, s)) continue
            const from = Math.max(p.cursor.get(s.id) ?? 0, p.known.get(s.id) ?? 0) + 1
            if (from > s.rv) continue
            const items = await this.readLog(s, from, s.rv, FRAME_ENTRIES - batch.length, frameBytes - bytes)
            if (items.length === 0 || (batch.length > 0 && bytes + items[0]!.bytes.length > frameBytes)) {
              if (items.length > 0) break // the next entry starts the next frame

              this.log.error({ stream: s.id, from, peer: p.id }, 'log entries a peer needs are missing')
              continue
            }
            for (const it of items) {
              const b = this.ttlRules.length > 0 ? this.expireIfLate(it) : it.bytes
              batch.push(b)
              bytes += b.length
            }
            p.cursor.set(s.id, items[items.length - 1]!.seq)
          }
          if (batch.length === 0) break
          if (!this.canSend(p)) {
            p.cursor.clear()
            break
          }
          let ok: boolean
          try {
            ok = this.send(p, { t: 'writes', e: batch })
          } catch (e) {
            // Not sent: rewind so these entries go out again (after reconnect at the latest).
            p.cursor = before
            throw e
          }
          if (!ok) {
            if (this.o.network!.connected(p.id)) p.blocked = true
            break
          }
        }
      } while (p.repump && this.canSend(p))
    } catch (e) {
      this.log.error({ err: e, peer: p.id }, 'replication send failed')
    } finally {
      p.pumping = false
    }
  }

  private broadcastBeat(): void {
    const rv = this.rvVector()
    const ups = this.upstreams()
    // Stability gossip: my applied vector, plus the newest report of every other site I know.
    const reports: Report[] = [{ site: this.id, epoch: ++this.epoch, av: [...this.streams.values()].filter((s) => s.av > 0).map((s) => [s.id, s.av] as [StreamId, number]) }]
    for (const r of this.reports.values()) reports.push({ site: r.site, epoch: r.epoch, av: [...r.av] })
    for (const p of this.peers.values()) if (p.up) this.send(p, { t: 'beat', rv, ups, reports })
  }

  /**
   * Causal stability of a write (stream, seq): every known site has applied it, and this site has
   * applied every write each of them had originated by then, so nothing concurrent with it can
   * still arrive here. Only then may its tombstone be reclaimed.
   */
  private stable(stream: StreamId, seq: number): boolean {
    if (this.av(stream) < seq) return false
    const sites = new Set<string>((this.o.network?.peers() ?? []).map((c) => c.site))
    for (const s of this.streams.values()) sites.add(s.origin)
    for (const r of this.reports.keys()) sites.add(r)
    sites.delete(this.id)
    for (const site of sites) {
      const r = this.reports.get(site)
      if (!r || (r.av.get(stream) ?? 0) < seq) return false
      for (const [sid, q] of r.av) if (sid.startsWith(site + '/') && this.av(sid) < q) return false
    }
    return true
  }

  /** Reclaim causally stable tombstones (keys marked g! when a tombstone was written). */
  private async collectTombstones(): Promise<void> {
    for (const sh of this.shards) {
      const keys: string[] = []
      for await (const k of sh.db.keys({ gte: 'g!', lt: 'g"', limit: 4096 }) as AsyncIterable<string>) keys.push(k.slice(2))
      if (keys.length === 0) continue
      await new Promise<void>((resolve, reject) => sh.enqueue({ kind: 'gc', keys, stable: (s, q) => this.stable(s, q), resolve, reject }))
    }
  }

  private onHeartbeat(): void {
    if (this.closed || this.failed) return
    this.broadcastBeat()
    this.pumpAll()
    // Safety net: received writes still pending get another apply attempt every heartbeat.
    if (!this.applying) for (const s of this.streams.values()) if (s.origin !== this.id && s.next <= s.rv) {
      this.kickApply()
      break
    }
    if (++this.beats % 5 === 0) void this.trimLogs().catch((e) => this.log.warn({ err: e }, 'log trim failed'))
    if (this.beats % 10 === 0) void this.collectTombstones().catch((e) => this.log.warn({ err: e }, 'tombstone collection failed'))
  }

  /** Drop log entries every configured receiving peer holds (and that are applied here). */
  private async trimLogs(): Promise<void> {
    const cfgs = this.o.network?.peers() ?? []
    for (const s of this.streams.values()) {
      let floor = s.av
      for (const c of cfgs) {
        if (!c.send || c.site === s.origin) continue
        const p = this.peers.get(c.site)
        if (p?.neverAccepts) continue
        floor = Math.min(floor, p?.known.get(s.id) ?? 0)
      }
      if (floor - s.gc < 1024) continue
      const db = this.shards[s.logShard]!.db
      await db.clear({ gt: logKey(s.id, s.gc), lte: logKey(s.id, floor) })
      // The trimmed entries carried clock times: keep the high-water mark before dropping them.
      await db.batch([
        { type: 'put', key: `m!gc!${s.id}`, value: encode(floor) },
        { type: 'put', key: 'm!clock', value: encode(this.clock.current) },
      ])
      s.gc = floor
    }
  }

  /** The bytes to send for a queued entry: itself, or an expired stub when its ttl has passed. */
  private expireIfLate(it: RingItem): Uint8Array {
    const e = it.entry ?? decodeEntry(it.bytes, this.o.maxValueBytes)
    it.entry = e
    if (e.expired || e.ops.length === 0) return it.bytes
    const ageMs = this.wall.nowMs() - e.time
    // Every op must be past its keyspace's ttl: a write is dropped whole or not at all.
    for (const op of e.ops) {
      const rule = this.ttlRules.find(([p]) => op.key.startsWith(p))
      if (!rule || ageMs <= rule[1]) return it.bytes
    }
    this.log.info({ stream: e.stream, seq: e.seq, ageMs }, 'queued write expired (ttl): sending a stub')
    return encodeEntry({ ...e, ops: [], expired: true })
  }

  // ---------------------------------------------------------------- public API

  session(options?: SessionOptions): Session {
    this.checkOpen()
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new CausewayError('INVALID_ARGUMENT', 'session options must be an object')
    const waitMs = options?.waitMs ?? 0
    if (typeof waitMs !== 'number' || !(waitMs >= 0)) throw new CausewayError('INVALID_ARGUMENT', 'waitMs must be a number >= 0')
    const ctx = options?.context === undefined ? new CausalContext() : CausalContext.decode(options.context)
    return new SessionImpl(this, ctx, options?.context !== undefined, waitMs)
  }

  status(): SiteStatus {
    const cfgs = this.o.network?.peers() ?? []
    const now = this.wall.nowMs()
    let pendingIn = 0
    for (const s of this.streams.values()) if (s.origin !== this.id) pendingIn += Math.max(0, s.rv - s.av)
    return {
      id: this.id,
      peers: cfgs.map((c) => {
        const p = this.peers.get(c.site)
        let pendingOut = 0
        if (c.send) {
          for (const s of this.streams.values()) {
            if (s.origin === c.site) continue
            pendingOut += Math.max(0, s.rv - (p?.known.get(s.id) ?? 0))
          }
        }
        let state: PeerState = 'unknown'
        if (p?.up) {
          let behind = false
          for (const [sid, q] of p.known) if ((this.streams.get(sid)?.rv ?? 0) < q && c.receive && sid.slice(0, sid.indexOf('/')) !== this.id) behind = true
          state = pendingOut > 0 || behind || !p.helloIn ? 'synchronizing' : 'connected'
        } else if (p?.everSeen) state = 'disconnected'
        const out: SiteStatus['peers'][number] = { id: c.site, state, pendingOut }
        if (p?.everSeen) out.lastSeenMs = Math.max(0, now - p.lastSeenAt)
        return out
      }),
      pendingIn,
    }
  }

  /** Run a tombstone collection pass now (normally every 10 heartbeats). */
  async gc(): Promise<void> {
    this.checkOpen()
    await this.collectTombstones()
  }

  conflictMode(key: string): ConflictMode {
    return this.modeOf(key)
  }

  tick(): Version {
    this.checkOpen()
    return this.clock.tick()
  }

  onApplied(listener: (keys: string[], origin: string) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async idle(timeoutMs = 30_000): Promise<void> {
    const deadline = this.wall.nowMs() + timeoutMs
    while (!this.isLocalIdle()) {
      if (this.wall.nowMs() > deadline) throw new CausewayError('TIMEOUT', `site ${this.id} did not become idle in ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 2))
    }
  }

  private isLocalIdle(): boolean {
    if (this.applying || this.localReady.length > 0) return false
    for (const sh of this.shards) if (sh.busy) return false
    for (const s of this.streams.values()) if (s.origin !== this.id && s.next <= s.rv) return false
    for (const p of this.peers.values()) if (p.inboundDepth > 0) return false
    return true
  }

  async ensureIndex(def: IndexDefinition): Promise<void> {
    this.checkOpen()
    if (typeof def !== 'object' || def === null || typeof def.name !== 'string' || !INDEX_NAME_RE.test(def.name)) {
      throw new CausewayError('INVALID_ARGUMENT', `index name must match ${INDEX_NAME_RE}`)
    }
    if (typeof def.prefix !== 'string' || typeof def.terms !== 'function' || typeof def.fingerprint !== 'string') {
      throw new CausewayError('INVALID_ARGUMENT', 'index needs prefix, fingerprint and terms()')
    }
    const existing = this.indexes.get(def.name)
    if (existing && existing.fingerprint === def.fingerprint && existing.prefix === def.prefix) {
      this.indexes.set(def.name, def)
      return
    }
    // Register first so concurrent writes maintain it, then rebuild from the current states.
    this.indexes.set(def.name, def)
    for (const sh of this.shards) {
      await sh.db.clear({ gte: `i!${def.name}!`, lt: `i!${def.name}"` })
      const keys: string[] = []
      const flush = async (): Promise<void> => {
        if (keys.length === 0) return
        const batch = keys.splice(0)
        await new Promise<void>((resolve, reject) => sh.enqueue({ kind: 'reindex', index: def, keys: batch, resolve, reject }))
      }
      for await (const k of sh.db.keys({ gte: K + def.prefix, lt: K + def.prefix + '\uffff' }) as AsyncIterable<string>) {
        keys.push(k.slice(K.length))
        if (keys.length >= 512) await flush()
      }
      await flush()
    }
  }

  scanIndex(name: string, options: ScanOptions = {}): AsyncIterable<{ term: string; key: string }> {
    this.checkOpen()
    if (!this.indexes.has(name)) throw new CausewayError('INVALID_ARGUMENT', `no index named '${name}' (call ensureIndex first)`)
    const base = `i!${name}!`
    const range: Record<string, string> = {}
    if (options.gte !== undefined) range.gte = base + options.gte
    else if (options.gt !== undefined) range.gte = base + options.gt + '\u0001'
    else range.gte = base
    if (options.lt !== undefined) range.lt = base + options.lt
    else if (options.lte !== undefined) range.lt = base + options.lte + '\u0001'
    else range.lt = `i!${name}"`
    const limit = options.limit ?? Infinity
    const reverse = options.reverse === true
    const shards = this.shards
    // No shard contributes more than `limit` keys, so each shard iterator stops there by itself.
    const perShard = Number.isFinite(limit) ? { ...range, reverse, limit } : { ...range, reverse }
    return {
      [Symbol.asyncIterator]: () =>
        mergeShards(shards.map((sh) => sh.db.keys(perShard)), reverse, limit, (k) => {
          const rest = k.slice(base.length)
          const z = rest.indexOf('\u0000')
          return { term: rest.slice(0, z), key: rest.slice(z + 1) }
        }),
    }
  }

  scanKeys(prefix: string, options: { limit?: number; after?: string } = {}): AsyncIterable<string> {
    this.checkOpen()
    if (typeof prefix !== 'string') throw new CausewayError('INVALID_ARGUMENT', 'prefix must be a string')
    const range: Record<string, string> = { lt: K + prefix + '\uffff' }
    if (options.after !== undefined && options.after >= prefix) range.gt = K + options.after
    else range.gte = K + prefix
    const limit = options.limit ?? Infinity
    const self = this
    return {
      async *[Symbol.asyncIterator]() {
        let n = 0
        const it = mergeShards(
          self.shards.map((sh) => sh.db.keys(range)),
          false,
          Infinity,
          (k) => k.slice(K.length),
        )
        // Only keys with a live value at this site, judged on the committed state, a chunk at a time
        // (one storage round trip per chunk, not per key).
        let chunk: string[] = []
        const live = async function* (): AsyncGenerator<string> {
          const states = await self.readStates(chunk)
          for (const key of chunk) {
            if (n >= limit) return
            if (states.get(key)!.some((s) => s.value !== undefined)) {
              n++
              yield key
            }
          }
        }
        for await (const key of it) {
          chunk.push(key)
          if (chunk.length >= Math.min(256, limit - n)) {
            yield* live()
            chunk = []
            if (n >= limit) return
          }
        }
        if (chunk.length > 0) yield* live()
      },
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    for (const w of this.waiters) w.resolve()
    this.waiters = []
    await this.o.network?.stop().catch((e) => this.log.warn({ err: e }, 'network stop failed'))
    // Let queued writes finish so nothing acknowledged-in-flight is torn.
    const deadline = this.wall.nowMs() + 10_000
    while ((this.applying || this.shards.some((s) => s.busy)) && this.wall.nowMs() < deadline) {
      await new Promise((r) => setTimeout(r, 2))
    }
    for (const p of this.peers.values()) await p.inbound.catch(() => {})
    for (const sh of this.shards) sh.closed = true
    await Promise.allSettled(this.shards.map((s) => s.db.close()))
  }
}


/** Keys per shard fetched by the first storage call of a scan (most index lookups match a few keys). */
const SCAN_FIRST_BATCH = 64
/** Keys per shard fetched by each later storage call. */
const SCAN_BATCH = 1000

/**
 * Merge per-shard sorted key iterators into one sorted stream (UTF-8 byte order, as LevelDB sorts).
 * Keys are pulled in batches (nextv): one storage round-trip per shard for a small range, where
 * next() costs two (the key, then the end) — a scan touches every shard, so this is per lookup.
 */
async function* mergeShards<T>(
  its: Array<{ nextv(size: number): Promise<string[]>; close(): Promise<void> }>,
  reverse: boolean,
  limit: number,
  map: (k: string) => T,
): AsyncGenerator<T> {
  const bufs: string[][] = its.map(() => [])
  const pos: number[] = its.map(() => 0)
  const ended: boolean[] = its.map(() => false)
  // Refill shard i's buffer when it is used up; an empty batch marks the end of that shard.
  const fill = async (i: number, size: number): Promise<void> => {
    const got = await its[i]!.nextv(Math.max(1, Math.min(size, limit)))
    bufs[i] = got
    pos[i] = 0
    if (got.length === 0) ended[i] = true
  }
  let n = 0
  try {
    if (limit > 0) await Promise.all(its.map((_, i) => fill(i, SCAN_FIRST_BATCH)))
    while (n < limit) {
      let best = -1
      let bestKey = ''
      for (let i = 0; i < its.length; i++) {
        if (ended[i]) continue
        const h = bufs[i]![pos[i]!]!
        if (best === -1) {
          best = i
          bestKey = h
        } else {
          const c = cmpUtf8(h, bestKey)
          if (reverse ? c > 0 : c < 0) {
            best = i
            bestKey = h
          }
        }
      }
      if (best === -1) break
      if (++pos[best]! >= bufs[best]!.length) await fill(best, SCAN_BATCH)
      n++
      yield map(bestKey)
    }
  } finally {
    await Promise.allSettled(its.map((it) => it.close()))
  }
}

/** Compare strings by code point (= UTF-8 byte order, LevelDB's order), not by UTF-16 unit. */
export function cmpUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs === ys) return x < y ? -1 : 1
    return xs ? 1 : -1 // a surrogate (astral code point) sorts after any BMP unit
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}

// ---------------------------------------------------------------- sessions

class SessionImpl implements Session {
  private chain: Promise<unknown> = Promise.resolve()
  private verified: boolean

  constructor(private readonly site: SiteImpl, private readonly ctx: CausalContext, continued: boolean, private readonly waitMs: number) {
    this.verified = !continued
    if (continued) site.clock.observe(ctx.maxTime)
  }

  /** Operations run in call order even when the caller does not await. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(async () => {
      if (!this.verified) {
        const ok = await this.site.waitForDeps(this.ctx.depList(), this.waitMs)
        if (!ok) throw new CausewayError('CONTEXT_UNAVAILABLE', `the session's dependencies are not visible at site ${this.site.id} after ${this.waitMs} ms`)
        this.verified = true
      }
      return fn()
    })
    this.chain = p.catch(() => {})
    return p
  }

  put(key: string, value: Value): Promise<Version> {
    let bytes: Uint8Array
    try {
      this.checkSite()
      assertKey(key)
      bytes = encodeValue(value, this.maxValueBytes())
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(() => this.commit([{ key, value: bytes, supersedes: [] }]))
  }

  delete(key: string): Promise<Version> {
    try {
      this.checkSite()
      assertKey(key)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(() => this.commit([{ key, value: undefined, supersedes: [] }]))
  }

  write(ops: WriteOp[]): Promise<Version> {
    const prepared: WriteEntryOp[] = []
    try {
      this.checkSite()
      if (!Array.isArray(ops) || ops.length === 0) throw new CausewayError('INVALID_ARGUMENT', 'write needs a non-empty array of ops')
      if (ops.length > MAX_OPS_PER_WRITE) throw new CausewayError('INVALID_ARGUMENT', `a write holds at most ${MAX_OPS_PER_WRITE} ops`)
      const seen = new Set<string>()
      let total = 0
      for (const op of ops) {
        if (typeof op !== 'object' || op === null) throw new CausewayError('INVALID_ARGUMENT', 'each op must be an object')
        assertKey(op.key)
        if (seen.has(op.key)) throw new CausewayError('INVALID_ARGUMENT', `key '${op.key}' appears twice in one write`)
        seen.add(op.key)
        if ('delete' in op && op.delete === true) prepared.push({ key: op.key, value: undefined, supersedes: [] })
        else if ('value' in op) {
          const b = encodeValue(op.value, this.maxValueBytes())
          total += b.length
          prepared.push({ key: op.key, value: b, supersedes: [] })
        } else throw new CausewayError('INVALID_ARGUMENT', `op for '${op.key}' needs a value or delete: true`)
      }
      if (total > MAX_ENTRY_BYTES - 64 * 1024) throw new CausewayError('VALUE_TOO_LARGE', `the write's values total ${total} bytes, over ${MAX_ENTRY_BYTES - 64 * 1024}`)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(() => this.commit(prepared))
  }

  private async commit(ops: WriteEntryOp[]): Promise<Version> {
    for (const op of ops) op.supersedes = this.ctx.observed.size > 0 ? (this.ctx.observed.get(op.key) ?? []) : []
    const { version, dot } = await this.site.localWrite(ops, this.ctx)
    this.ctx.afterWrite(dot, ops.map((o) => o.key), version, (k) => this.site.modeOf(k) !== 'lww')
    return version
  }

  get(key: string): Promise<Entry | undefined> {
    try {
      this.checkSite()
      assertKey(key)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(async () => {
      const st = (await this.site.readStates([key])).get(key)!
      return this.observe(key, st)
    })
  }

  getMany(keys: Iterable<string>): Promise<Map<string, Entry>> {
    let list: string[]
    try {
      this.checkSite()
      if (keys === null || typeof keys !== 'object' || typeof (keys as Iterable<string>)[Symbol.iterator] !== 'function') {
        throw new CausewayError('INVALID_ARGUMENT', 'getMany needs an iterable of keys')
      }
      list = [...new Set(keys)]
      for (const k of list) assertKey(k)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(async () => {
      const states = await this.site.readStates(list)
      const out = new Map<string, Entry>()
      for (const k of list) {
        const e = this.observe(k, states.get(k)!)
        if (e) out.set(k, e)
      }
      return out
    })
  }

  private observe(key: string, st: KeyState): Entry | undefined {
    const e = viewOf(key, st, this.site.modeOf(key))
    if (st.length > 0) {
      const o = observationOf(st)
      this.ctx.observe(key, o.versions, o.dots, this.site.modeOf(key) !== 'lww')
    }
    return e
  }

  context(): string {
    return this.ctx.encode()
  }

  private checkSite(): void {
    this.site.checkOpen()
  }
  private maxValueBytes(): number {
    return this.site.maxValueBytes
  }
}

