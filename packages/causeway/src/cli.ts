#!/usr/bin/env node
// Must stay the first import: libp2p 3.x needs Promise.withResolvers, which Node 20 lacks.
import '@causeway/libp2p/polyfills'
import { open, readFile, stat } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { CausewayError, isCausewayError } from '@causeway/core'
import { exampleConfig, loadConfig } from './config.js'
import type { NodeConfig } from './config.js'
import { keygen, swarmkey } from './keys.js'
import { createLogger } from './log.js'
import { EXIT_RUNTIME, EXIT_USAGE, runNode } from './serve.js'
import type { OpenSite } from './serve.js'
import { formatStatus } from './status.js'
import type { NodeStatus } from './status.js'
import { SIMULATE_USAGE, cmdSimulate } from './simulate-cli.js'


const USAGE = `causeway <command> [options]

Commands:
  serve   --config site.json          run a site until SIGTERM/SIGINT
  init    [--out site.json] [--id X]  write a commented example config (stdout without --out)
  keygen  --out peer.key              create an Ed25519 key (if missing) and print its PeerId
  swarmkey --out swarm.key            create a libp2p private-network key (psk)
  status  --config site.json | --url http://127.0.0.1:8101 [--json]
                                      print the peers' aliveness as seen by a running node
${SIMULATE_USAGE}  help                                this text
`

class UsageError extends Error {}

function out(line: string): void { process.stdout.write(`${line}\n`) }
function err(line: string): void { process.stderr.write(`${line}\n`) }

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
  if (cfg.psk !== undefined) await warnIfExposed(cfg.psk, log)
  const node = await runNode(cfg, log, openSite)
  await warnIfExposed(cfg.privateKey, log)

  // One line on stdout so supervisors and tests know where the node listens.
  out(JSON.stringify({ ready: true, site: cfg.id, peerId: node.peerId, addrs: node.addrs, http: node.http }))
  log.info({ peerId: node.peerId, addrs: node.addrs, http: node.http }, 'site serving')
  const onSignal = (signal: string): void => {
    log.info({ signal }, 'shutting down')
    node.stop(signal)
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))
  return await node.done
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
      case 'simulate': return await cmdSimulate(rest)
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
    // System errors (EACCES, ENOSPC, ...) are one line an operator can act on; a stack helps no one.
    const errno = (e as NodeJS.ErrnoException | undefined)?.code
    if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) err(`causeway: ${(e as Error).message}`)
    else err(`causeway: ${(e as Error)?.stack ?? String(e)}`)
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
