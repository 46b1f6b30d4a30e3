/**
 * peers: the same replication workload on Causeway and on peer systems, side by side in one run.
 * N writes at one replica (64 concurrent writers, ~100 B documents); write throughput at the
 * writer, and the time until all N are visible at the other replica.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { SkipError, errMsg, repeat, round, sleep, summarize, withTimeout, type BenchContext, type Benchmark } from '../harness.js'
import { openSimCluster, waitApplied } from '../cluster.js'
import { openDeployment } from '../deployment.js'
import { loadOrbit } from '../orbitdb.js'
import { repoRoot } from '../report.js'

interface Pair {
  /** Write `n` docs at replica A with `conc` concurrent writers; resolves when all acknowledged. */
  write(prefix: string, n: number, conc: number): Promise<void>
  /** Resolves when all `n` docs with `prefix` are visible at replica B. */
  waitVisible(prefix: string, n: number, timeoutMs: number): Promise<void>
  /** Called before write() so the visibility watch is in place (optional). */
  watch?(prefix: string, n: number): Promise<void>
  close(): Promise<void>
  /** Replication status, for error messages. */
  diag?(): Promise<string>
}

interface System {
  name: string
  short: string
  version: string
  open(ctx: BenchContext, dir: string): Promise<Pair>
}

const doc = (i: number) => ({ i, name: `vm-${i}`, state: 'building', pad: 'p'.repeat(48) })

function pkgVersion(name: string): string {
  try {
    const req = createRequire(import.meta.url)
    return (req(`${name}/package.json`) as { version: string }).version
  } catch {
    try {
      return (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      return '?'
    }
  }
}

async function pool(n: number, conc: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(conc, n) }, async () => {
      while (next < n) await fn(next++)
    }),
  )
}

const causewaySim: System = {
  name: 'Causeway (2 sites, in-process sim, 0 ms)',
  short: 'Causeway sim',
  version: pkgVersion('causeway'),
  async open(ctx, dir) {
    const c = await openSimCluster({ ids: ['a', 'b'], latencyMs: 0, tmp: dir })
    const [a, b] = c.sites as [typeof c.sites[0], typeof c.sites[0]]
    const watches = new Map<string, ReturnType<typeof waitApplied>>()
    return {
      async watch(prefix, n) {
        watches.set(prefix, waitApplied(b, (k) => k.startsWith(prefix), n))
      },
      async write(prefix, n, conc) {
        const sessions = Array.from({ length: conc }, () => a.session())
        let next = 0
        await Promise.all(sessions.map(async (s) => {
          while (next < n) {
            const i = next++
            await s.put(`${prefix}${i}`, doc(i))
          }
        }))
      },
      async waitVisible(prefix, _n, timeoutMs) {
        const w = watches.get(prefix)!
        try {
          await withTimeout(w.done, timeoutMs, () => `Causeway: ${w.seen()}/${_n} visible at b`)
        } finally {
          w.stop()
        }
      },
      diag: async () => `a: ${JSON.stringify(a.status().peers)}; b: pendingIn=${b.status().pendingIn}`,
      close: () => c.close(),
    }
  },
}

const causewayLibp2p: System = {
  name: 'Causeway (2 processes, libp2p, 0 ms)',
  short: 'Causeway libp2p',
  version: pkgVersion('causeway'),
  async open(ctx, dir) {
    const d = await openDeployment({ ids: ['a', 'b'], latencyMs: 0, tmp: dir })
    const a = d.workers.get('a')!
    const b = d.workers.get('b')!
    return {
      watch: async (prefix, n) => void (await b.call('watch', { prefix, n })),
      write: async (prefix, n, conc) => void (await a.call('write', { prefix, n, concurrency: conc, valueSize: 100 }, 300_000)),
      async waitVisible(prefix, n, timeoutMs) {
        const r = await b.call<{ seen: number }>('watchResult', { prefix, timeoutMs }, timeoutMs + 10_000)
        if (r.seen < n) throw new Error(`only ${r.seen}/${n} visible at b within ${timeoutMs} ms`)
      },
      close: () => d.close(),
    }
  },
}

type PouchDoc = { _id: string; [k: string]: unknown }
interface PouchDb {
  put(doc: PouchDoc): Promise<unknown>
  info(): Promise<{ doc_count: number }>
  allDocs(o: { startkey: string; endkey: string; limit?: number }): Promise<{ rows: unknown[] }>
  replicate: { to(other: PouchDb, o: Record<string, unknown>): { cancel(): void; on(ev: string, fn: (e: unknown) => void): unknown } }
  close(): Promise<void>
}
type PouchCtor = new (name: string, opts?: Record<string, unknown>) => PouchDb

const pouch: System = {
  name: 'PouchDB (2 LevelDB databases, live replication)',
  short: 'PouchDB',
  version: pkgVersion('pouchdb'),
  async open(ctx, dir) {
    let PouchDB: PouchCtor
    try {
      const spec = 'pouchdb' // no type declarations: loaded untyped
      const mod = (await import(spec)) as { default: PouchCtor }
      PouchDB = mod.default
    } catch (e) {
      throw new SkipError(`cannot load pouchdb: ${errMsg(e)} (install: flock /tmp/npm.lock npm install pouchdb -w @causeway/benchmarks)`)
    }
    mkdirSync(dir, { recursive: true })
    const a = new PouchDB(path.join(dir, 'pouch-a'))
    const b = new PouchDB(path.join(dir, 'pouch-b'))
    const rep = a.replicate.to(b, { live: true, retry: true })
    rep.on('error', () => undefined)
    let base = 0
    return {
      async watch() {
        base = (await b.info()).doc_count
      },
      write: (prefix, n, conc) => pool(n, conc, (i) => a.put({ _id: `${prefix}${i}`, ...doc(i) })),
      async waitVisible(_prefix, n, timeoutMs) {
        const deadline = performance.now() + timeoutMs
        while ((await b.info()).doc_count - base < n) {
          if (performance.now() > deadline) throw new Error(`PouchDB: only ${(await b.info()).doc_count - base}/${n} replicated within ${timeoutMs} ms`)
          await sleep(10)
        }
      },
      async close() {
        rep.cancel()
        await a.close()
        await b.close()
      },
    }
  },
}

const orbit: System = {
  name: 'OrbitDB (keyvalue, 2 peers over libp2p, in-process)',
  short: 'OrbitDB',
  version: '?',
  async open(ctx, dir) {
    const o = await loadOrbit()
    orbit.version = o.version
    return o.openPair(dir)
  },
}

export const peers: Benchmark = {
  name: 'peers',
  description:
    'The same workload on Causeway and peer systems, side by side: N writes (one document of ~100 B each, 64 concurrent writers) at replica A; write throughput at A, and the time from the first write until all N are visible at replica B. Everything on this one machine, on disk (LevelDB), no fsync.',
  quick: true,
  async run(ctx) {
    const N = ctx.pick({ tiny: 300, quick: 2_000, full: 10_000 })
    const reps = ctx.reps({ tiny: 1, quick: 2, full: 3 })
    const conc = 64
    ctx.param('writes', N)
    ctx.param('writers', conc)
    ctx.param('repetitions', reps)
    if (ctx.mode === 'quick') ctx.note('quick mode: 2,000 writes and a 40 s cap for OrbitDB; the goals are stated for 10,000 writes (`npm run bench -- --only peers`).')
    const systems = ctx.mode === 'tiny' ? [causewaySim, pouch] : [causewaySim, causewayLibp2p, pouch, orbit]
    const rows: Array<Array<string | number | null>> = []
    const res = new Map<string, { tput: number; repl: number; lowerBound?: boolean }>()
    let step = 0
    for (const sys of systems) {
      const dir = path.join(ctx.tmp, `sys${step}`)
      let pair: Pair | undefined
      try {
        pair = await sys.open(ctx, dir)
        const tputs: number[] = []
        const repls: number[] = []
        let timedOut = false
        const slow = sys === orbit
        const sysReps = slow ? 1 : reps
        const timeoutMs = slow ? ctx.pick({ tiny: 60_000, quick: 40_000, full: 1_200_000 }) : ctx.pick({ tiny: 30_000, quick: 30_000, full: 300_000 })
        await repeat(sysReps, 1, async (rep) => {
          const n = rep < 0 ? (slow ? 20 : Math.max(100, Math.round(N / 10))) : N
          const prefix = `r${rep + 1}-`
          await pair!.watch?.(prefix, n)
          const t0 = performance.now()
          await pair!.write(prefix, n, conc)
          const tw = performance.now()
          try {
            await pair!.waitVisible(prefix, n, slow ? Math.max(1000, timeoutMs - (tw - t0)) : timeoutMs)
          } catch (e) {
            if (rep < 0 || !slow || !/timed out/.test(errMsg(e))) throw new Error(`${errMsg(e)}${pair!.diag ? ` (${await pair!.diag()})` : ''}`)
            timedOut = true
            ctx.note(`${sys.name}: not all ${n} writes were visible at B after ${Math.round(timeoutMs / 1000)} s (${errMsg(e)}); its replication time is reported as a lower bound.`)
          }
          const tv = performance.now()
          if (rep >= 0) {
            tputs.push((n * 1000) / (tw - t0))
            repls.push(tv - t0)
          }
        })
        const t = summarize(tputs)
        const r = summarize(repls)
        res.set(sys.name, { tput: t.median, repl: r.median, lowerBound: timedOut })
        rows.push([sys.name, sys.version, round(t.median, 0), `${round(t.min, 0)}–${round(t.max, 0)}`, timedOut ? `≥ ${round(r.median, 0)} (timed out)` : round(r.median, 0), `${round(r.min, 0)}–${round(r.max, 0)}${sysReps === 1 ? ' (1 run)' : ''}`])
      } catch (e) {
        const reason = errMsg(e)
        ctx.skip(sys.name, reason)
        rows.push([sys.name, sys.version, null, `skipped: ${reason}`.slice(0, 200), null, ''])
      } finally {
        await pair?.close().catch(() => undefined)
      }
      ctx.progress(++step, systems.length, sys.name)
    }
    ctx.table({
      id: 'peers',
      title: `Replicating ${N.toLocaleString('en-US')} writes between two replicas`,
      columns: ['system', 'version', 'writes/s at A (median)', 'min–max', `ms until all ${N} visible at B (median)`, 'min–max'],
      rows,
      conclusion: 'Lower replication time and higher write throughput are better; ratios against Causeway are in the headlines.',
    })
    // ratios against Causeway on the sim, or over libp2p if the sim run did not complete
    const cwSys = res.has(causewaySim.name) ? causewaySim : causewayLibp2p
    const cw = res.get(cwSys.name)
    const cats = [...res.keys()]
    if (cats.length) {
      ctx.figure({
        id: 'replication-time',
        kind: 'bar',
        title: `Time until ${N.toLocaleString('en-US')} writes are visible at the other replica`,
        xLabel: 'system',
        yLabel: 'ms (log scale, lower is better)',
        logY: true,
        categories: cats.map((c) => [causewaySim, causewayLibp2p, pouch, orbit].find((x) => x.name === c)?.short ?? c),
        series: [{ name: 'replication time (ms)', points: cats.map((c, i) => [i, res.get(c)!.repl]) }],
        conclusion: 'Causeway should be far to the left of the peers: its replication streams batches of writes, where PouchDB replicates documents through a changes feed with revision trees and OrbitDB through a Merkle-CRDT log whose entries are fetched block by block.',
        reproduce: ctx.reproduce,
      })
    }
    if (cats.length) {
      ctx.figure({
        id: 'write-throughput',
        kind: 'bar',
        title: 'Write throughput at the writing replica (64 writers)',
        xLabel: 'system',
        yLabel: 'writes / s (log scale, higher is better)',
        logY: true,
        categories: cats.map((c) => [causewaySim, causewayLibp2p, pouch, orbit].find((x) => x.name === c)?.short ?? c),
        series: [{ name: 'writes/s', points: cats.map((c, i) => [i, res.get(c)!.tput]) }],
        conclusion: 'How many acknowledged writes per second each system takes at one replica while it replicates to the other.',
        reproduce: ctx.reproduce,
      })
    }
    if (cw) {
      for (const [name, goal] of [[pouch.name, 20], [orbit.name, 100]] as const) {
        const p = res.get(name)
        const short = name.split(' ')[0]!
        if (res.get(name)?.lowerBound) ctx.note(`${short} did not finish within its time cap: its speed-up is a lower bound.`)
        if (!p) {
          ctx.headline({ metric: `replication speed-up vs ${short}`, value: null, unit: '×', goal: `≥ ${goal}×` })
          continue
        }
        const speed = p.repl / cw.repl
        ctx.headline({ metric: `replication speed-up vs ${short} (${N} writes, ${cwSys.short})${p.lowerBound ? ', lower bound' : ''}`, value: round(speed, 1), unit: '×', goal: `≥ ${goal}×`, met: speed >= goal })
        ctx.headline({ metric: `write throughput vs ${short} (${cwSys.short})`, value: round(cw.tput / p.tput, 2), unit: '×', goal: '> 1×', met: cw.tput > p.tput })
      }
    } else {
      ctx.headline({ metric: 'replication speed-up vs PouchDB (Causeway did not complete)', value: null, unit: '×', goal: '≥ 20×', met: false })
      ctx.headline({ metric: 'replication speed-up vs OrbitDB (Causeway did not complete)', value: null, unit: '×', goal: '≥ 100×', met: false })
    }
  },
}
