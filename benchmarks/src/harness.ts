/**
 * Benchmark harness: result model, statistics, repetition, machine description, child-process
 * tracking (nothing is left running after a run ends or is interrupted) and temp directories.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'

export type Mode = 'tiny' | 'quick' | 'full'

/** Thrown (or returned by `skip()`) when a benchmark or part of it cannot run here. */
export class SkipError extends Error {
  constructor(reason: string) {
    super(reason)
    this.name = 'SkipError'
  }
}

/** Raised for bad command-line input: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export type Cell = string | number | null

export interface Table {
  id: string
  title: string
  columns: string[]
  rows: Cell[][]
  /** What a reader should conclude from it. */
  conclusion?: string
}

export interface Series {
  name: string
  points: Array<[number, number]>
}

export interface Figure {
  id: string
  kind: 'line' | 'bar' | 'cdf'
  title: string
  xLabel: string
  yLabel: string
  series: Series[]
  /** Bar charts: category labels (x values are indexes into it). */
  categories?: string[]
  logX?: boolean
  logY?: boolean
  /** What a reader should conclude. */
  conclusion: string
  /** Command that reproduces it. */
  reproduce: string
}

export interface Headline {
  metric: string
  value: number | null
  unit: string
  goal?: string
  /** true/false when a goal applies and was measured, undefined otherwise. */
  met?: boolean
}

export interface Skipped {
  what: string
  reason: string
}

export interface BenchResult {
  name: string
  /** ISO time this benchmark started (results of an --only run are merged into latest.json). */
  ranAt?: string
  mode?: Mode
  description: string
  status: 'ok' | 'partial' | 'skipped' | 'failed'
  reason?: string
  durationMs: number
  params: Record<string, unknown>
  headlines: Headline[]
  tables: Table[]
  figures: Figure[]
  notes: string[]
  skipped: Skipped[]
}

export interface MachineInfo {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  os: string
  hostname: string
}

export interface Report {
  schema: 'causeway-bench/1'
  startedAt: string
  finishedAt: string
  mode: Mode
  argv: string[]
  machine: MachineInfo
  benchmarks: BenchResult[]
}

/** What a benchmark gets: its mode, a progress hook and collectors for its results. */
export interface BenchContext {
  mode: Mode
  /** Scratch directory for this benchmark (removed afterwards). */
  tmp: string
  /** Advance the progress display: `total` units of work, `done` so far, a short label. */
  progress(done: number, total: number, label?: string): void
  log(msg: string): void
  table(t: Table): void
  figure(f: Figure): void
  headline(h: Headline): void
  note(text: string): void
  skip(what: string, reason: string): void
  param(key: string, value: unknown): void
  /** Pick a parameter by mode. */
  pick<T>(values: { tiny?: T; quick: T; full: T }): T
  /** Number of repetitions by mode (honours --reps). */
  reps(values: { tiny?: number; quick: number; full: number }): number
  /** The command that reproduces this benchmark's figures. */
  reproduce: string
  /** Abort signal raised on SIGINT/SIGTERM. */
  signal: AbortSignal
}

export interface Benchmark {
  name: string
  description: string
  /** Part of `--quick`. */
  quick: boolean
  run(ctx: BenchContext): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Statistics

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN
  if (sorted.length === 1) return sorted[0]!
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  const a = sorted[lo]!
  const b = sorted[hi]!
  return a + (b - a) * (pos - lo)
}

export interface Summary {
  median: number
  min: number
  max: number
  n: number
}

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((x, y) => x - y)
  return { median: quantile(s, 0.5), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, n: s.length }
}

export interface LatencySummary {
  n: number
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

export function latencies(samples: number[]): LatencySummary {
  const s = [...samples].sort((x, y) => x - y)
  const sum = s.reduce((a, b) => a + b, 0)
  return {
    n: s.length,
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
    mean: s.length ? sum / s.length : NaN,
  }
}

/** Points of an empirical CDF (at most `maxPoints`), x = value, y = fraction ≤ x. */
export function cdfPoints(samples: number[], maxPoints = 200): Array<[number, number]> {
  const s = [...samples].sort((x, y) => x - y)
  if (s.length === 0) return []
  const out: Array<[number, number]> = []
  const step = Math.max(1, Math.floor(s.length / maxPoints))
  for (let i = 0; i < s.length; i += step) out.push([s[i]!, (i + 1) / s.length])
  out.push([s[s.length - 1]!, 1])
  return out
}

/** Run `fn` for warm-up then `reps` times; returns the per-repetition results. */
export async function repeat<T>(reps: number, warmup: number, fn: (rep: number) => Promise<T>): Promise<T[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i)
  const out: T[] = []
  for (let i = 0; i < reps; i++) out.push(await fn(i))
  return out
}

/**
 * Closed-loop throughput: `workers` concurrent loops call `op(worker, i)` until `durationMs` passes.
 * Returns operations per second.
 */
export async function throughput(
  workers: number,
  durationMs: number,
  op: (worker: number, i: number) => Promise<unknown>,
  maxOps = Number.POSITIVE_INFINITY,
): Promise<{ opsPerSec: number; ops: number; ms: number }> {
  let ops = 0
  const start = performance.now()
  const deadline = start + durationMs
  const loops: Promise<void>[] = []
  for (let w = 0; w < workers; w++) {
    loops.push(
      (async () => {
        let i = 0
        while (performance.now() < deadline && ops < maxOps) {
          await op(w, i++)
          ops++
        }
      })(),
    )
  }
  await Promise.all(loops)
  const ms = performance.now() - start
  return { opsPerSec: (ops * 1000) / ms, ops, ms }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Deterministic PRNG (mulberry32) so every run uses the same key sequence. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Zipfian key generator over [0, n) with exponent s (YCSB uses 0.99), by inverse CDF lookup. */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) {
    sum += 1 / Math.pow(i + 1, s)
    cdf[i] = sum
  }
  for (let i = 0; i < n; i++) cdf[i] = cdf[i]! / sum
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

export const round = (x: number, digits = 2): number => {
  if (!Number.isFinite(x)) return x
  const f = Math.pow(10, digits)
  return Math.round(x * f) / f
}

/** Human formatting of a number for tables: 3 significant digits, thousands separators. */
export function fmt(x: Cell | undefined): string {
  if (x === null || x === undefined) return '—'
  if (typeof x === 'string') return x
  if (!Number.isFinite(x)) return String(x)
  const abs = Math.abs(x)
  if (Number.isInteger(x) || abs >= 1000) return Math.round(x).toLocaleString('en-US')
  if (abs >= 100) return x.toFixed(0)
  if (abs >= 10) return x.toFixed(1)
  if (abs >= 1) return x.toFixed(2)
  if (abs === 0) return '0'
  return x.toPrecision(2)
}

// ---------------------------------------------------------------------------------------------
// Machine

export function machineInfo(): MachineInfo {
  const cpus = os.cpus()
  return {
    cpu: (cpus[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} (${os.platform()}/${os.arch()})`,
    hostname: os.hostname(),
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes and cleanup

const children = new Set<ChildProcess>()
const cleanups = new Set<() => void | Promise<void>>()

/** Spawn a child process that is killed when the run ends or is interrupted. */
export function spawnTracked(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  children.add(child)
  child.once('exit', () => children.delete(child))
  child.once('error', () => children.delete(child))
  return child
}

/** Number of tracked child processes still alive. */
export function liveChildren(): number {
  return children.size
}

/** Register a cleanup (temp dirs, servers, proxies) run on exit or interruption. Returns unregister. */
export function onCleanup(fn: () => void | Promise<void>): () => void {
  cleanups.add(fn)
  return () => cleanups.delete(fn)
}

/** Kill one child: SIGTERM, then SIGKILL after `graceMs`. Resolves when it has exited. */
export function killChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child)
    return Promise.resolve()
  }
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL')
      } catch {
        /* already gone */
      }
    }, graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      children.delete(child)
      resolve()
    })
    try {
      child.kill('SIGTERM')
    } catch {
      clearTimeout(timer)
      resolve()
    }
  })
}

/** Kill every tracked child and run the cleanups. */
export async function cleanupAll(graceMs = 2000): Promise<void> {
  await Promise.all([...children].map((c) => killChild(c, graceMs)))
  // last registered, first run (a server's stop script may need a directory registered earlier)
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn)
    try {
      await fn()
    } catch {
      /* best effort */
    }
  }
}

/** Synchronous last resort (process 'exit'): SIGKILL whatever is still alive. */
function killAllSync(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL')
    } catch {
      /* ignore */
    }
  }
}

let handlersInstalled = false
const abort = new AbortController()
export const interrupted: AbortSignal = abort.signal

/** Install SIGINT/SIGTERM/exit handlers once (the CLI calls this). */
export function installSignalHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.once('exit', killAllSync)
  const onSignal = (sig: NodeJS.Signals) => {
    abort.abort(new Error(`interrupted by ${sig}`))
    process.stderr.write(`\n${sig}: stopping child processes…\n`)
    // connections torn down during shutdown may raise errors nobody listens to any more
    process.on('uncaughtException', () => undefined)
    process.on('unhandledRejection', () => undefined)
    void cleanupAll(1000).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
}

export function makeTmpDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `causeway-bench-${prefix}-`))
  onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function rmDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

/** Race a promise against a timeout (rejects with a clear message). */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${typeof what === 'function' ? what() : what}: timed out after ${ms} ms`)), ms)
      }),
    ])
  } finally {
    if (timer) clearTimeout(timer)
  }
}

/** Error message for reports. */
export function errMsg(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e)
  return String(e)
}
