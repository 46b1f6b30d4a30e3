#!/usr/bin/env node
// Must stay the first import: libp2p 3.x needs Promise.withResolvers, which Node 20 lacks.
import '@causeway/libp2p/polyfills'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { CausewayError, isCausewayError } from '@causeway/core'
import type { OpenSiteOptions, Site } from '@causeway/core'
import { DEFAULT_MAX_FRAME_BYTES, libp2pNetwork } from '@causeway/libp2p'
import type { Libp2pNetwork } from '@causeway/libp2p'
import { exampleConfig, loadConfig } from './config.js'
import type { NodeConfig } from './config.js'
import { keygen, swarmkey } from './keys.js'
import { createLogger } from './log.js'
import { startHttpServer } from './server.js'
import { formatStatus } from './status.js'
import type { NodeStatus } from './status.js'
import type { HttpServer } from './server.js'

/** Exit codes: 0 ok, 1 runtime failure (port in use, LOCKED, ...), 2 usage or config error. */
const EXIT_RUNTIME = 1
const EXIT_USAGE = 2
/** openSite's default maxValueBytes (API.md). */
const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
/** A clean shutdown that takes longer than this is abandoned (exit 1). */
const SHUTDOWN_TIMEOUT_MS = 15_000

const USAGE = `causeway <command> [options]

Commands:
  serve   --config site.json          run a site until SIGTERM/SIGINT
  init    [--out site.json] [--id X]  write a commented example config (stdout without --out)
  keygen  --out peer.key              create an Ed25519 key (if missing) and print its PeerId
  swarmkey --out swarm.key            create a libp2p private-network key (psk)
  status  --config site.json | --url http://127.0.0.1:8101 [--json]
                                      print the peers' aliveness as seen by a running node
  help                                this text
`

class UsageError extends Error {}

function out(line: string): void { process.stdout.write(`${line}\n`) }
function err(line: string): void { process.stderr.write(`${line}\n`) }

type OpenSite = (options: OpenSiteOptions) => Promise<Site>

/** The facade's openSite, loaded lazily so the CLI also builds while the facade evolves. */
async function loadOpenSite(): Promise<OpenSite> {
  const mod = (await import('./index.js')) as unknown as { openSite?: OpenSite }
  if (typeof mod.openSite !== 'function') throw new CausewayError('INVALID_OPTIONS', 'this build of causeway has no openSite')
  return mod.openSite
}

function args(argv: string[], options: Record<string, { type: 'string' | 'boolean'; short?: string }>) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values as Record<string, string | boolean | undefined>
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

/** Keys readable by group or others are still used (refusing would be an outage), but loudly. */
async function warnIfExposed(path: string, log: { warn(obj: object, msg?: string): void }): Promise<void> {
  try {
    const st = await stat(path)
    if ((st.mode & 0o077) !== 0) log.warn({ path, mode: (st.mode & 0o777).toString(8) }, 'secret key file is readable by group or others; chmod 600 it')
  } catch { /* missing files are reported by whoever opens them */ }
}

async function cmdServe(argv: string[]): Promise<number> {
  const v = args(argv, { config: { type: 'string', short: 'c' } })
  if (typeof v['config'] !== 'string') throw new UsageError('serve needs --config <file>')
  const cfg = await loadConfig(v['config'])
  const log = createLogger(cfg.logLevel, { site: cfg.id })
  const openSite = await loadOpenSite()

  let network: Libp2pNetwork | undefined
  let site: Site | undefined
  let http: HttpServer | undefined
  const cleanup = async (): Promise<void> => {
    await http?.close().catch((e: unknown) => log.error({ err: e }, 'closing http failed'))
    await site?.close().catch((e: unknown) => log.error({ err: e }, 'closing site failed'))
    await network?.stop().catch((e: unknown) => log.error({ err: e }, 'stopping network failed'))
  }
  try {
    // The default key lives in the data dir; create it so the key can be written there.
    await mkdir(cfg.dir, { recursive: true })
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
    await warnIfExposed(cfg.privateKey, log)
    if (cfg.psk !== undefined) await warnIfExposed(cfg.psk, log)
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
  } catch (e) {
    await cleanup()
    throw e
  }

  // One line on stdout so supervisors and tests know where the node listens.
  out(JSON.stringify({ ready: true, site: cfg.id, peerId: network.peerId, addrs: network.addrs, http: http.url }))
  log.info({ peerId: network.peerId, addrs: network.addrs, http: http.url }, 'site serving')

  return await new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) {
        // A second signal: the operator wants out now. fsync durability keeps acknowledged writes.
        log.warn({ signal }, 'second signal: exiting without a clean close')
        resolve(EXIT_RUNTIME)
        return
      }
      stopping = true
      log.info({ signal }, 'shutting down')
      const timer = setTimeout(() => {
        log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'clean shutdown timed out')
        resolve(EXIT_RUNTIME)
      }, SHUTDOWN_TIMEOUT_MS)
      timer.unref()
      cleanup().then(() => { clearTimeout(timer); resolve(0) }, () => { clearTimeout(timer); resolve(EXIT_RUNTIME) })
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
}

async function cmdInit(argv: string[]): Promise<number> {
  const v = args(argv, { out: { type: 'string', short: 'o' }, id: { type: 'string' }, force: { type: 'boolean' } })
  const text = exampleConfig(typeof v['id'] === 'string' ? v['id'] : 'paris')
  if (typeof v['out'] !== 'string') {
    process.stdout.write(text)
    return 0
  }
  let fh
  try {
    fh = await open(v['out'], v['force'] === true ? 'w' : 'wx', 0o644)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CausewayError('INVALID_ARGUMENT', `${v['out']} exists (use --force to overwrite)`)
    throw new CausewayError('INVALID_ARGUMENT', `cannot write ${v['out']}: ${(e as Error).message}`)
  }
  try { await fh.writeFile(text) } finally { await fh.close() }
  err(`wrote ${v['out']}`)
  return 0
}

async function cmdKeygen(argv: string[]): Promise<number> {
  const v = args(argv, { out: { type: 'string', short: 'o' } })
  if (typeof v['out'] !== 'string') throw new UsageError('keygen needs --out <file>')
  const r = await keygen(v['out'])
  if (!r.created) err(`${v['out']} exists; kept it (a key is the site's identity)`)
  out(r.peerId)
  return 0
}

async function cmdSwarmkey(argv: string[]): Promise<number> {
  const v = args(argv, { out: { type: 'string', short: 'o' } })
  if (typeof v['out'] !== 'string') throw new UsageError('swarmkey needs --out <file>')
  await swarmkey(v['out'])
  err(`wrote ${v['out']} (copy it to every site; keep it secret)`)
  return 0
}

async function cmdStatus(argv: string[]): Promise<number> {
  const v = args(argv, { config: { type: 'string', short: 'c' }, url: { type: 'string' }, json: { type: 'boolean' } })
  let base: string
  if (typeof v['url'] === 'string') base = v['url'].replace(/\/+$/, '')
  else if (typeof v['config'] === 'string') {
    const cfg: NodeConfig = await loadConfig(v['config'])
    if (cfg.http.port === 0) throw new UsageError(`${cfg.file} uses http.port 0; pass --url`)
    base = `http://${cfg.http.host.includes(':') ? `[${cfg.http.host}]` : cfg.http.host}:${cfg.http.port}`
  } else throw new UsageError('status needs --config <file> or --url <url>')
  let res: Response
  try {
    res = await fetch(`${base}/v1/status`, { signal: AbortSignal.timeout(5000) })
  } catch (e) {
    err(`cannot reach ${base}: ${(e as Error).message}`)
    return EXIT_RUNTIME
  }
  const body = (await res.json()) as NodeStatus
  if (!res.ok) {
    err(`status failed: HTTP ${res.status} ${JSON.stringify(body)}`)
    return EXIT_RUNTIME
  }
  out(v['json'] === true ? JSON.stringify(body, null, 2) : formatStatus(body))
  return 0
}

async function version(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }
    return pkg.version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  try {
    switch (cmd) {
      case 'serve': return await cmdServe(rest)
      case 'init': return await cmdInit(rest)
      case 'keygen': return await cmdKeygen(rest)
      case 'swarmkey': return await cmdSwarmkey(rest)
      case 'status': return await cmdStatus(rest)
      case '--version': case 'version': out(await version()); return 0
      case undefined: case 'help': case '--help': case '-h': process.stdout.write(USAGE); return cmd === undefined ? EXIT_USAGE : 0
      default: throw new UsageError(`unknown command "${cmd}"`)
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`causeway: ${e.message}\n\n${USAGE}`)
      return EXIT_USAGE
    }
    if (isCausewayError(e)) {
      err(`causeway: ${e.code}: ${e.message}`)
      return e.code === 'INVALID_CONFIG' || e.code === 'INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_RUNTIME
    }
    err(`causeway: ${(e as Error)?.stack ?? String(e)}`)
    return EXIT_RUNTIME
  }
}

process.on('unhandledRejection', (reason) => {
  // Unknown state is worse than a restart: with fsync durability nothing acknowledged is lost.
  err(`causeway: unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`)
  process.exit(EXIT_RUNTIME)
})

main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
  err(`causeway: ${(e as Error)?.stack ?? String(e)}`)
  process.exit(EXIT_RUNTIME)
})
