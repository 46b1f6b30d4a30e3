import { mkdir, stat } from 'node:fs/promises'
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { CausewayError, isCausewayError } from '@causeway/core'
import type { OpenSiteOptions, Site } from '@causeway/core'
import { DEFAULT_MAX_FRAME_BYTES, libp2pNetwork, peerIdFromKeyFile } from '@causeway/libp2p'
import type { Libp2pNetwork } from '@causeway/libp2p'
import type { NodeConfig } from './config.js'
import type { NodeLogger } from './log.js'
import { startHttpServer } from './server.js'
import type { HttpServer } from './server.js'

/** Exit codes: 0 ok, 1 runtime failure (port in use, LOCKED, storage failure, ...), 2 usage or config error. */
export const EXIT_OK = 0
export const EXIT_RUNTIME = 1
export const EXIT_USAGE = 2
/** openSite's default maxValueBytes (API.md). */
const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
/** A clean shutdown that takes longer than this is abandoned (exit 1). */
export const SHUTDOWN_TIMEOUT_MS = 15_000
/** Pseudo file systems: LevelDB cannot live there (and fs.mkdir recursive loops on /proc). */
const PSEUDO_FS = ['/proc', '/sys', '/dev']

export type OpenSite = (options: OpenSiteOptions) => Promise<Site>

export interface RunningNode {
  readonly peerId: string
  readonly addrs: string[]
  readonly http: string
  /** Settles with the process exit code: 0 after stop(), 1 when the site stopped itself. */
  readonly done: Promise<number>
  /** Clean shutdown (a second call: give up at once, exit 1). */
  stop(reason: string): void
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined
}

/**
 * Create the data directory (0700) one level at a time, and check it is writable, so a bad `dir`
 * is one clear INVALID_CONFIG line instead of a hang (/proc) or a raw EACCES stack.
 */
export async function prepareDataDir(dir: string, file: string): Promise<void> {
  const abs = resolve(dir)
  const bad = (problem: string, cause?: unknown): CausewayError =>
    new CausewayError('INVALID_CONFIG', `${file}: field "dir" ${abs}: ${problem}`, { cause, details: { file, field: 'dir' } })
  if (PSEUDO_FS.some((p) => abs === p || abs.startsWith(`${p}/`))) throw bad('is on a pseudo file system; use a real directory such as /var/lib/causeway/<id>')
  const ensure = async (d: string): Promise<void> => {
    try {
      if ((await stat(d)).isDirectory()) return
      throw bad(`${d} exists and is not a directory`)
    } catch (err) {
      if (isCausewayError(err)) throw err
      if (errnoCode(err) !== 'ENOENT') throw bad(`cannot use ${d}: ${(err as Error).message}`, err)
    }
    const parent = dirname(d)
    if (parent === d) throw bad(`cannot use ${d}`)
    await ensure(parent)
    try {
      await mkdir(d, { mode: 0o700 })
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return
      throw bad(`cannot create ${d}: ${errnoCode(err) === 'EACCES' ? 'permission denied' : (err as Error).message}`, err)
    }
  }
  await ensure(abs)
  try {
    await access(abs, constants.W_OK | constants.X_OK)
  } catch (err) {
    throw bad('is not writable by this user (permission denied)', err)
  }
}

/**
 * Start a configured site: data dir, key, libp2p, the engine, the HTTP API. Configuration problems
 * reject INVALID_CONFIG (exit 2: restarting will not help); the rest keeps its own code (exit 1).
 */
export async function runNode(cfg: NodeConfig, log: NodeLogger, openSite: OpenSite): Promise<RunningNode> {
  let network: Libp2pNetwork | undefined
  let site: Site | undefined
  let http: HttpServer | undefined
  const cleanup = async (): Promise<void> => {
    await http?.close().catch((e: unknown) => log.error({ err: e }, 'closing http failed'))
    await site?.close().catch((e: unknown) => log.error({ err: e }, 'closing site failed'))
    await network?.stop().catch((e: unknown) => log.error({ err: e }, 'stopping network failed'))
  }
  let unsubscribe = (): void => {}
  let settle!: (code: number) => void
  const done = new Promise<number>((r) => { settle = r })
  let stopping = false
  const shutdown = (code: number, reason: string): void => {
    if (stopping) {
      // A second signal: the operator wants out now. fsync durability keeps acknowledged writes.
      log.warn({ reason }, 'second stop request: exiting without a clean close')
      settle(EXIT_RUNTIME)
      return
    }
    stopping = true
    unsubscribe()
    const timer = setTimeout(() => {
      log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'clean shutdown timed out')
      settle(EXIT_RUNTIME)
    }, SHUTDOWN_TIMEOUT_MS)
    timer.unref()
    cleanup().then(() => { clearTimeout(timer); settle(code) }, () => { clearTimeout(timer); settle(EXIT_RUNTIME) })
  }
  try {
    await prepareDataDir(cfg.dir, cfg.file)
    // The key first: its errors (unreadable, ...) are runtime problems; after it, whatever
    // libp2p refuses (bad multiaddr, PeerId, unusable listen address, swarm key) is configuration.
    await peerIdFromKeyFile(cfg.privateKey)
    try {
      network = await libp2pNetwork({
        ...(cfg.listen === undefined ? {} : { listen: cfg.listen }),
        privateKey: cfg.privateKey,
        ...(cfg.psk === undefined ? {} : { psk: cfg.psk }),
        peers: cfg.peers,
        ...(cfg.latencyMs === undefined ? {} : { latencyMs: cfg.latencyMs }),
        // A replication frame carries at least one whole entry: leave room for two of the largest
        // values plus batch overhead, so a big maxValueBytes never produces an unsendable frame.
        maxFrameBytes: Math.max(DEFAULT_MAX_FRAME_BYTES, 2 * (cfg.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES) + 1024 * 1024),
        logger: log,
      })
    } catch (e) {
      if (isCausewayError(e, 'INVALID_OPTIONS')) throw new CausewayError('INVALID_CONFIG', `${cfg.file}: ${e.message}`, { cause: e, details: { file: cfg.file } })
      throw e
    }
    site = await openSite({
      id: cfg.id,
      dir: cfg.dir,
      network,
      logger: log,
      ...(cfg.shards === undefined ? {} : { shards: cfg.shards }),
      ...(cfg.durability === undefined ? {} : { durability: cfg.durability }),
      ...(cfg.conflicts === undefined ? {} : { conflicts: cfg.conflicts }),
      ...(cfg.scopes === undefined ? {} : { scopes: cfg.scopes }),
      ...(cfg.maxValueBytes === undefined ? {} : { maxValueBytes: cfg.maxValueBytes }),
      ...(cfg.heartbeatMs === undefined ? {} : { heartbeatMs: cfg.heartbeatMs }),
    })
    const net = network
    http = await startHttpServer({ site, host: cfg.http.host, port: cfg.http.port, logger: log, statusExtra: () => ({
      peerId: net.peerId,
      addrs: net.addrs,
      // Transport-level view (is there a replication stream right now?), next to the engine's.
      transport: Object.fromEntries(net.peers().map((p) => [p.site, net.connected(p.site) ? 'up' : 'down'])),
    }) })
    // A site that stopped itself answers nothing useful: exit non-zero so the supervisor restarts
    // it (it recovers from its log and its peers).
    unsubscribe = site.onFailure((err) => {
      log.fatal({ err }, 'site stopped after a storage failure; exiting so the supervisor restarts it')
      shutdown(EXIT_RUNTIME, 'storage failure')
    })
  } catch (e) {
    await cleanup()
    throw e
  }
  const net = network
  return {
    peerId: net.peerId,
    addrs: net.addrs,
    http: http.url,
    done,
    stop: (reason) => shutdown(EXIT_OK, reason),
  }
}
