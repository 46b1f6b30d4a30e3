/**
 * `causeway simulate`: a seeded multi-site workload in virtual time with faults (partitions and
 * heals, jitter and latency changes, site restarts on surviving memory storage, session moves by
 * context token), its history checked by @causeway/checker. Everything that varies comes from
 * the seed and virtual time, so a seed replays the same run (the same trace()).
 */
import { CausewayError, createSite, isCausewayError } from '@causeway/core'
import type { Entry, Session, Site, Value, WriteOp } from '@causeway/core'
import { createRandom, createSimNetwork } from '@causeway/sim'
import type { RandomFn, SimNetwork } from '@causeway/sim'
import { checkHistory, createHistory } from '@causeway/checker'
import type { History, SessionRecorder, Violation, ViolationKind } from '@causeway/checker'
import { createSimDisk, type SimDisk } from './sim-disk.js'

export interface SimulateOptions {
  seed: number
  /** Number of sites, 2..26 (default 5). */
  sites?: number
  /** Virtual minutes of workload (default 60). */
  minutes?: number
  /** Workers (sessions) per site (default 2). */
  workersPerSite?: number
  /** A user workload (see Workload); default: the built-in mix of puts, deletes, writes and reads. */
  workload?: Workload
  /**
   * A fault no engine survives, to prove the checker bites: a restarted site comes back on an
   * empty disk (default false).
   */
  diskLossOnRestart?: boolean
  /** Multiplies the rate of faults (partitions, heals, latency changes, restarts), 0..10 (default 1). */
  faultScale?: number
}

/** What a workload's step gets: a recording session, the seeded random source, ids. */
export interface WorkloadStep {
  /** put/get/delete/getMany/write of the worker's current session; recorded for the checker. */
  session: RecordingSession
  random: RandomFn
  worker: number
  site: string
}

/** The operations a workload may use; each resolves like the Session method and is recorded. */
export type RecordingSession = Pick<Session, 'put' | 'get' | 'delete' | 'getMany' | 'write'>

/**
 * A user workload (`causeway simulate --workload ./w.js`, a module whose default export is one):
 * `step` runs one short burst of operations (the simulator calls it again after a think time,
 * moves the session between sites and injects faults around it). `conflicts` is given to every site
 * and to the checker ('lww' / 'return-all' per prefix).
 */
export interface Workload {
  step(s: WorkloadStep): Promise<void>
  conflicts?: SimConflicts
}

/** Conflict handling both the sites and the checker understand (the checker has no merge functions). */
export type SimConflicts = 'lww' | 'return-all' | { default?: 'lww' | 'return-all'; prefixes?: Record<string, 'lww' | 'return-all'> }

export interface SimulateResult {
  seed: number
  operations: number
  violations: Violation[]
  counts: Record<ViolationKind, number>
  /** Operations that failed with an unexpected error (each one fails the run). */
  errors: string[]
  restarts: number
  /** Restarts that were power losses (unsynced writes dropped), and how many writes they dropped. */
  powerLosses: number
  lostUnsynced: number
  partitions: number
  moves: number
  virtualMs: number
  trace: string
}

const LWW_KEYS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
const RA_KEYS = ['ra/1', 'ra/2']
const DEFAULT_CONFLICTS: SimConflicts = { default: 'lww', prefixes: { 'ra/': 'return-all' } }
/** Virtual time the driver advances between fault decisions. */
const STEP_MS = 1000
/** How long a moved session waits for its context at the new site. */
const MOVE_WAIT_MS = 2000
/** Virtual seconds the workers get to finish after the workload ends (a step plus a restart). */
const QUIESCE_STEPS = 600

/** The built-in workload: the mix of test/randomized.test.ts (unique values, so reads are attributable). */
function builtinWorkload(): Workload {
  let unique = 0
  return {
    conflicts: DEFAULT_CONFLICTS,
    async step({ session: s, random, worker }) {
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
      const value = (): string => `w${worker}:${unique++}`
      const r = random()
      if (r < 0.3) await s.put(pick(LWW_KEYS), value())
      else if (r < 0.38) await s.put(pick(RA_KEYS), value())
      else if (r < 0.43) await s.delete(pick(LWW_KEYS))
      else if (r < 0.5) {
        const keys = [...new Set([pick(LWW_KEYS), pick(LWW_KEYS), pick(RA_KEYS)])]
        await s.write(keys.map((key) => ({ key, value: value() })))
      } else if (r < 0.8) await s.get(pick([...LWW_KEYS, ...RA_KEYS]))
      else await s.getMany(LWW_KEYS.filter(() => random() < 0.5))
    },
  }
}

/** Wraps a session so each completed operation lands in the history, in call order. */
function recording(s: Session, rec: () => SessionRecorder, keys: Set<string>): RecordingSession {
  return {
    put: async (key: string, value: Value) => {
      const v = await s.put(key, value)
      keys.add(key)
      rec().recordPut(key, value, v)
      return v
    },
    delete: async (key: string) => {
      const v = await s.delete(key)
      keys.add(key)
      rec().recordDelete(key, v)
      return v
    },
    write: async (ops: WriteOp[]) => {
      const v = await s.write(ops)
      for (const o of ops) keys.add(o.key)
      rec().recordWrite(ops, v)
      return v
    },
    get: async (key: string) => {
      const e = await s.get(key)
      keys.add(key)
      rec().recordGet(key, e)
      return e
    },
    getMany: async (ks: Iterable<string>) => {
      const list = [...ks]
      const m = await s.getMany(list)
      for (const k of list) keys.add(k)
      rec().recordGetMany(list, m)
      return m
    },
  }
}

class Simulation {
  readonly random: RandomFn
  readonly net: SimNetwork
  readonly ids: string[]
  readonly sites: Array<Site | undefined>
  /** Each site's shard databases, kept across restarts: the site's disk. */
  private readonly disks: SimDisk[][]
  private readonly inflight: number[]
  private readonly drained: Array<Array<() => void>>
  readonly history: History = createHistory()
  readonly keys = new Set<string>()
  readonly errors: string[] = []
  restarts = 0
  powerLosses = 0
  /** Writes undone by power losses (not acknowledged ones, with fsync durability). */
  lostUnsynced = 0
  partitions = 0
  moves = 0
  done = false

  constructor(
    readonly seed: number,
    n: number,
    readonly workload: Workload,
    private readonly diskLoss: boolean,
    private readonly faultScale: number,
  ) {
    this.random = createRandom(seed)
    this.net = createSimNetwork({ seed, latencyMs: 20, jitterMs: 10, virtualTime: true, settleTimeoutMs: 600_000 })
    this.ids = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i))
    this.sites = this.ids.map(() => undefined)
    this.disks = this.ids.map(() => [])
    this.inflight = this.ids.map(() => 0)
    this.drained = this.ids.map(() => [])
  }

  int(n: number): number {
    return Math.floor(this.random() * n)
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.net.timers.after(ms, r))
  }

  async open(i: number): Promise<void> {
    const disk = this.disks[i]!
    const id = this.ids[i]!
    this.sites[i] = await createSite({
      id,
      shards: 2,
      conflicts: this.workload.conflicts ?? DEFAULT_CONFLICTS,
      durability: 'fsync',
      network: this.net.adapter(id),
      clock: this.net.clock,
      timers: this.net.timers,
      storage: (index) => (disk[index] ??= createSimDisk()).db,
    })
  }

  /** Close a site once its in-flight operations are done (none start meanwhile: it is marked down). */
  async restart(i: number, downMs: number, powerLoss: boolean): Promise<void> {
    const site = this.sites[i]!
    this.sites[i] = undefined
    if (this.inflight[i]! > 0) await new Promise<void>((r) => this.drained[i]!.push(r))
    await site.close()
    if (powerLoss) {
      // Whatever the site wrote without sync is gone; it must come back on what it acknowledged.
      for (const d of this.disks[i]!) this.lostUnsynced += await d.powerLoss()
      this.powerLosses++
    }
    if (this.diskLoss) this.disks[i]!.length = 0
    this.restarts++
    await this.sleep(downMs)
    if (!this.done) await this.open(i)
  }

  async op<T>(i: number, fn: () => Promise<T>): Promise<T> {
    this.inflight[i]!++
    try {
      return await fn()
    } finally {
      if (--this.inflight[i]! === 0) for (const r of this.drained[i]!.splice(0)) r()
    }
  }

  async worker(w: number): Promise<void> {
    const sid = `w${w}`
    let at = w % this.ids.length
    let session: Session | undefined
    /** The Site object the session belongs to: a restarted site is a new object, the old session is closed. */
    let sessionOf: Site | undefined
    let token: string | undefined
    const rec = (): SessionRecorder => this.history.session(this.ids[at]!, sid)
    while (!this.done) {
      await this.sleep(100 + this.int(2900))
      if (this.done) break
      // Move: the home site is down, or now and then on purpose.
      if (this.sites[at] === undefined || this.sites[at] !== sessionOf || this.random() < 0.05) {
        const to = this.int(this.ids.length)
        const site = this.sites[to]
        if (site === undefined) continue
        if (to !== at && session !== undefined) this.moves++
        const next = site.session(token === undefined ? {} : { context: token, waitMs: MOVE_WAIT_MS })
        try {
          // The first operation verifies the context (waits for its dependencies to be visible).
          await this.op(to, () => next.getMany([]))
        } catch (e) {
          if (isCausewayError(e) && e.code === 'CONTEXT_UNAVAILABLE') continue
          this.errors.push(`${sid} moving to ${this.ids[to]}: ${String(e)}`)
          continue
        }
        at = to
        session = next
        sessionOf = site
      }
      const s = session!
      try {
        await this.op(at, () => this.workload.step({ session: recording(s, rec, this.keys), random: this.random, worker: w, site: this.ids[at]! }))
        token = s.context()
      } catch (e) {
        this.errors.push(`${sid} at ${this.ids[at]}: ${String(e)}`)
      }
    }
  }

  /** One fault decision per virtual second. */
  fault(): Promise<void> | undefined {
    // Per virtual second, at scale 1: a partition 1%, a heal 3%, a latency change 0.5%, a restart 1%.
    const r = this.random() / this.faultScale
    if (r < 0.01) {
      const cut = this.ids.filter(() => this.random() < 0.5)
      this.net.partition(cut, this.ids.filter((x) => !cut.includes(x)))
      this.partitions++
    } else if (r < 0.04) this.net.heal()
    else if (r < 0.045) this.net.setLatency(5 + this.int(100), this.int(50))
    else if (r < 0.055) {
      const up = this.sites.flatMap((s, i) => (s === undefined ? [] : [i]))
      if (up.length > 1) return this.restart(up[this.int(up.length)]!, 500 + this.int(20_000), this.random() < 0.5)
    }
    return undefined
  }
}

export async function simulate(options: SimulateOptions): Promise<SimulateResult> {
  const n = options.sites ?? 5
  const minutes = options.minutes ?? 60
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) throw new CausewayError('INVALID_ARGUMENT', 'seed must be an integer >= 0')
  if (!Number.isSafeInteger(n) || n < 2 || n > 26) throw new CausewayError('INVALID_ARGUMENT', 'sites must be an integer in 2..26')
  if (!(minutes > 0 && minutes <= 10_000)) throw new CausewayError('INVALID_ARGUMENT', 'minutes must be in (0, 10000]')
  const scale = options.faultScale ?? 1
  if (!(scale >= 0 && scale <= 10)) throw new CausewayError('INVALID_ARGUMENT', 'faultScale must be in 0..10')
  const sim = new Simulation(options.seed, n, options.workload ?? builtinWorkload(), options.diskLossOnRestart === true, options.faultScale ?? 1)
  const { net } = sim
  const t0 = net.clock.nowMs()
  for (let i = 0; i < n; i++) await sim.open(i)
  // Workers and restarts live in virtual time: they end only while the driver advances it.
  let running = 0
  const track = (p: Promise<void>, what: string): void => {
    running++
    void p.catch((e) => void sim.errors.push(`${what}: ${String(e)}`)).finally(() => running--)
  }
  for (let w = 0; w < n * (options.workersPerSite ?? 2); w++) track(sim.worker(w), `worker ${w}`)
  for (let t = 0; t < minutes * 60_000; t += STEP_MS) {
    const p = sim.fault()
    if (p !== undefined) track(p, 'restart')
    await net.run(STEP_MS)
  }
  // Quiesce: stop the workers, heal, bring every site back, let everything converge.
  sim.done = true
  net.heal()
  for (let i = 0; running > 0; i++) {
    if (i > QUIESCE_STEPS) throw new CausewayError('TIMEOUT', `seed ${options.seed}: workers did not stop`)
    await net.run(STEP_MS)
  }
  const keys = [...sim.keys].sort()
  const finalReads = new Map<string, Map<string, Entry | undefined>>()
  try {
    for (let i = 0; i < n; i++) if (sim.sites[i] === undefined) await sim.open(i)
    await net.settle()
    for (let i = 0; i < n; i++) {
      const m = await sim.sites[i]!.session().getMany(keys)
      finalReads.set(sim.ids[i]!, new Map(keys.map((k) => [k, m.get(k)])))
    }
  } catch (e) {
    // A site that stopped (or never converged) is the finding; the history is still checked.
    sim.errors.push(`final phase: ${String(e)}`)
  }
  const virtualMs = net.clock.nowMs() - t0
  for (const s of sim.sites) await s?.close().catch(() => {})
  await net.close()
  const complete = finalReads.size === n
  const res = checkHistory(sim.history, { ...(complete ? { finalReads } : {}), complete, conflicts: sim.workload.conflicts ?? DEFAULT_CONFLICTS })
  return {
    seed: options.seed,
    operations: sim.history.ops.length,
    violations: res.violations,
    counts: res.counts,
    errors: sim.errors,
    restarts: sim.restarts,
    powerLosses: sim.powerLosses,
    lostUnsynced: sim.lostUnsynced,
    partitions: sim.partitions,
    moves: sim.moves,
    virtualMs,
    trace: net.trace(),
  }
}

/** `seed 7: <n> operations, 0 violations`, then one line per violation or error. */
export function formatSimulation(r: SimulateResult): string {
  const bad = r.violations.length + r.errors.length
  let out = `seed ${r.seed}: ${r.operations} operations, ${bad} violations\n`
  for (const v of r.violations.slice(0, 20)) out += `  ${v.kind}: ${v.detail}\n`
  for (const e of r.errors.slice(0, 20)) out += `  error: ${e}\n`
  return out
}
