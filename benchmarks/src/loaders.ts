/**
 * Adapter layer over the packages under test. Everything is loaded dynamically and checked, so the
 * harness builds and runs while other packages are still being written: a missing or broken
 * package makes the benchmarks that need it report "skipped: <reason>" instead of crashing.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { NetworkAdapter, OpenSiteOptions, Site } from '@causeway/core'
import { SkipError, errMsg } from './harness.js'
import { repoRoot } from './report.js'

export type OpenSite = (options: OpenSiteOptions) => Promise<Site>

async function tryImport(spec: string): Promise<Record<string, unknown>> {
  try {
    return (await import(spec)) as Record<string, unknown>
  } catch (e) {
    throw new SkipError(`cannot load '${spec}': ${errMsg(e)}`)
  }
}

function need<T>(mod: Record<string, unknown>, name: string, spec: string): T {
  const v = mod[name]
  if (typeof v !== 'function') throw new SkipError(`'${spec}' does not export ${name}() yet`)
  return v as T
}

export async function loadOpenSite(): Promise<OpenSite> {
  const mod = await tryImport('causeway')
  return need<OpenSite>(mod, 'openSite', 'causeway')
}

export interface SimNetwork {
  adapter(site: string, options?: { peers?: Array<{ site: string; send?: boolean; receive?: boolean }> }): NetworkAdapter
  partition(...groups: string[][]): void
  heal(): void
  settle(timeoutMs?: number): Promise<void>
  close(): Promise<void>
  /** Optional (present in @causeway/sim): bytes/frames accepted by send(). */
  stats?(): { frames: number; bytes: number; perLink?: Record<string, { frames: number; bytes: number }> }
  resetStats?(): void
}
export type CreateSimNetwork = (options: { latencyMs?: number | ((from: string, to: string) => number); jitterMs?: number; seed?: number }) => SimNetwork

export async function loadSim(): Promise<CreateSimNetwork> {
  const mod = await tryImport('@causeway/sim')
  return need<CreateSimNetwork>(mod, 'createSimNetwork', '@causeway/sim')
}

export interface Libp2pNetwork extends NetworkAdapter {
  peerId: string
  addrs: string[]
}
export interface Libp2pOptions {
  listen: string[]
  privateKey: string
  peers: Array<{ site: string; addrs: string[]; send?: boolean; receive?: boolean }>
  psk?: string
  latencyMs?: number
}
export interface Libp2pModule {
  libp2pNetwork(options: Libp2pOptions): Promise<Libp2pNetwork>
  peerIdFromKeyFile(file: string): Promise<string>
}

export async function loadLibp2p(): Promise<Libp2pModule> {
  const mod = await tryImport('@causeway/libp2p')
  return {
    libp2pNetwork: need(mod, 'libp2pNetwork', '@causeway/libp2p'),
    peerIdFromKeyFile: need(mod, 'peerIdFromKeyFile', '@causeway/libp2p'),
  }
}

/** The ORM as far as the control-plane benchmark needs it. */
export interface OrmDatabase {
  repository(model: unknown): Record<string, (...args: unknown[]) => Promise<unknown>>
  transaction<T>(fn: (tx: OrmDatabase) => Promise<T>): Promise<T>
  close(): Promise<void>
}
export interface OrmModule {
  defineModel(def: unknown): unknown
  openDatabase(options: Record<string, unknown>): Promise<OrmDatabase>
  /** The `conflicts` option a site needs for the ORM's tables (per-column merge), if the ORM has one. */
  ormConflicts?(models: unknown[]): OpenSiteOptions['conflicts']
}

export async function loadOrm(): Promise<OrmModule> {
  const mod = await tryImport('@causeway/orm')
  return {
    defineModel: need(mod, 'defineModel', '@causeway/orm'),
    openDatabase: need(mod, 'openDatabase', '@causeway/orm'),
    ...(typeof mod['ormConflicts'] === 'function' ? { ormConflicts: mod['ormConflicts'] as OrmModule['ormConflicts'] } : {}),
  }
}

/**
 * The reference service ("compute-db", examples/compute-db). Its API is in flux; we look for
 * `createInstances(db, n, { concurrency })` and the models it needs (`models` array or the
 * individual model exports), and an `openDatabase`-compatible helper if it has one.
 */
export interface ComputeDb {
  source: string
  createInstances(db: OrmDatabase, n: number, options: { concurrency: number; boot?: boolean; prefix?: string }): Promise<unknown>
  models: unknown[]
  raw: Record<string, unknown>
}

export async function loadComputeDb(): Promise<ComputeDb> {
  const candidates = ['@causeway/example-compute-db', '@causeway/compute-db', 'compute-db']
  const files = ['examples/compute-db/dist/index.js', 'examples/compute-db/dist/src/index.js', 'examples/compute-db/dist/service.js']
  let mod: Record<string, unknown> | undefined
  let source = ''
  const errors: string[] = []
  for (const spec of candidates) {
    try {
      mod = (await import(spec)) as Record<string, unknown>
      source = spec
      break
    } catch (e) {
      errors.push(`${spec}: ${errMsg(e)}`)
    }
  }
  if (!mod) {
    for (const f of files) {
      const abs = path.join(repoRoot, f)
      if (!existsSync(abs)) continue
      try {
        mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>
        source = f
        break
      } catch (e) {
        errors.push(`${f}: ${errMsg(e)}`)
      }
    }
  }
  if (!mod) throw new SkipError(`examples/compute-db is not available (${errors[0] ?? 'no build output under examples/compute-db/dist'})`)
  const createInstances = mod['createInstances']
  if (typeof createInstances !== 'function') throw new SkipError(`${source} does not export createInstances(db, n, { concurrency }) yet`)
  let models: unknown[] = []
  const listed = mod['computeModels'] ?? mod['models']
  if (Array.isArray(listed)) models = listed as unknown[]
  else if (typeof listed === 'object' && listed !== null) models = Object.values(listed as object)
  else models = Object.entries(mod).filter(([k, v]) => /^[A-Z]/.test(k) && v && typeof v === 'object' && ('table' in (v as object) || 'info' in (v as object))).map(([, v]) => v)
  if (models.length === 0) throw new SkipError(`${source} exports no models (expected \`models\` or model objects)`)
  return { source, createInstances: createInstances as ComputeDb['createInstances'], models, raw: mod }
}
