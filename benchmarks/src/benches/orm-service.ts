/**
 * orm-service: the reference service's "create N instances" workload (examples/compute-db) on one
 * site, SQLite through the ORM vs a Causeway site through the same ORM, side by side in one run.
 */
import path from 'node:path'
import { SkipError, errMsg, latencies, repeat, round, summarize, type Benchmark, type Series, cdfPoints } from '../harness.js'
import { loadComputeDb, loadOpenSite, loadOrm, type OrmDatabase } from '../loaders.js'

export const ormService: Benchmark = {
  name: 'orm-service',
  description:
    'The reference service (examples/compute-db) creating N instances — each call: instance + metadata + system metadata + info cache in one transaction, the joined read, the create action — at 16 calls in flight, on ONE site: SQLite (better-sqlite3, WAL, the ORM\'s SQLite backend) vs a Causeway site (4 LevelDB shards, fsync durability) through the same ORM code. Repetitions alternate the two systems; per-call latency percentiles are per repetition, then the median is taken.',
  quick: true,
  async run(ctx) {
    let orm: Awaited<ReturnType<typeof loadOrm>>
    let cdb: Awaited<ReturnType<typeof loadComputeDb>>
    let openSite: Awaited<ReturnType<typeof loadOpenSite>>
    try {
      orm = await loadOrm()
      cdb = await loadComputeDb()
      openSite = await loadOpenSite()
    } catch (e) {
      throw e instanceof SkipError ? e : new SkipError(errMsg(e))
    }
    const N = ctx.pick({ tiny: 20, quick: 300, full: 500 })
    const conc = 16
    const reps = ctx.reps({ tiny: 1, quick: 3, full: 5 })
    ctx.param('instances', N)
    ctx.param('concurrency', conc)
    ctx.param('repetitions', reps)
    ctx.param('service', cdb.source)
    const systems = ['SQLite (ORM, 1 site)', 'Causeway (ORM, 1 site, LevelDB, fsync)'] as const
    const stats = new Map<string, { p50: number[]; p90: number[]; p99: number[]; total: number[]; calls: number[] }>()
    for (const s of systems) stats.set(s, { p50: [], p90: [], p99: [], total: [], calls: [] })
    let step = 0
    const run = async (sys: (typeof systems)[number], rep: number) => {
      const n = rep < 0 ? Math.min(N, 30) : N
      let db: OrmDatabase
      let close: () => Promise<void>
      if (sys === systems[0]) {
        db = (await orm.openDatabase({ backend: 'sqlite', file: path.join(ctx.tmp, `svc-sqlite-${rep + 1}.db`), models: cdb.models })) as OrmDatabase
        close = () => db.close()
      } else {
        const site = await openSite({ id: 'svc', dir: path.join(ctx.tmp, `svc-causeway-${rep + 1}`), conflicts: orm.ormConflicts?.(cdb.models) })
        db = (await orm.openDatabase({ backend: 'causeway', site, models: cdb.models })) as OrmDatabase
        close = async () => {
          await db.close()
          await site.close()
        }
      }
      try {
        const t0 = performance.now()
        const calls = (await cdb.createInstances(db, n, { concurrency: conc, prefix: `r${rep + 1}` })) as number[]
        const total = performance.now() - t0
        if (rep < 0) return
        const l = latencies(calls)
        const st = stats.get(sys)!
        st.p50.push(l.p50)
        st.p90.push(l.p90)
        st.p99.push(l.p99)
        st.total.push(total)
        st.calls = st.calls.concat(calls)
      } finally {
        await close()
      }
    }
    await repeat(reps, 1, async (rep) => {
      for (const sys of systems) {
        try {
          await run(sys, rep)
        } catch (e) {
          ctx.skip(`${sys}, repetition ${rep + 1}`, errMsg(e))
        }
      }
      ctx.progress(++step, reps + 1, `repetition ${rep + 1}`)
    })
    const rows: Array<Array<string | number | null>> = []
    const cdf: Series[] = []
    const med = (xs: number[]) => summarize(xs).median
    for (const sys of systems) {
      const st = stats.get(sys)!
      if (st.p50.length === 0) continue
      const t = summarize(st.total)
      rows.push([sys, N, round(med(st.p50), 2), round(med(st.p90), 2), round(med(st.p99), 2), round(t.median, 0), `${round(t.min, 0)}–${round(t.max, 0)}`, round((N * 1000) / t.median, 0)])
      cdf.push({ name: sys, points: cdfPoints(st.calls) })
    }
    ctx.table({
      id: 'side-by-side',
      title: `Creating ${N} instances, 16 calls in flight, one site (per-call latency in ms, medians of ${reps} repetitions)`,
      columns: ['system', 'instances', 'p50', 'p90', 'p99', 'total (ms)', 'total min–max', 'calls/s'],
      rows,
      conclusion: 'The same service code on both backends. Causeway pays for its replication log, version metadata and index maintenance on every write, and for a second storage step when a transaction spans shards; SQLite runs the whole transaction in-process.',
    })
    if (cdf.length > 0) {
      ctx.figure({
        id: 'call-cdf',
        kind: 'cdf',
        title: `Per-call latency CDF, create ${N} instances on one site`,
        xLabel: 'ms per call',
        yLabel: 'fraction of calls',
        series: cdf,
        conclusion: 'How far Causeway\'s curve sits to the right of SQLite\'s is the single-site cost of running the service on a geo-replicable store.',
        reproduce: ctx.reproduce,
      })
    }
    const sq = stats.get(systems[0])!
    const cw = stats.get(systems[1])!
    if (sq.p50.length > 0 && cw.p50.length > 0) {
      const r = med(cw.p50) / med(sq.p50)
      ctx.headline({ metric: 'per-call p50, Causeway vs SQLite (one site, create instances)', value: round(r, 2), unit: '×', goal: '≤ 2×', met: r <= 2 })
    }
  },
}
