/**
 * control-plane: the ORM reference service's "boot a VM" workload (examples/compute-db
 * createInstances with the boot sequence), N VMs in parallel, requests spread evenly across
 * 1..8 sites, at 10 and 50 ms emulated one-way latency. Systems: Causeway (in-process sim; in the
 * full run also one OS process per site over libp2p), SQLite through the ORM (single-site upper
 * bound), and a central PostgreSQL reached through the TCP delay proxy.
 */
import path from 'node:path'
import {
  SkipError,
  cdfPoints,
  errMsg,
  latencies,
  repeat,
  round,
  summarize,
  type BenchContext,
  type Benchmark,
  type Series,
  type Summary,
} from '../harness.js'
import { openSimCluster } from '../cluster.js'
import { openDeployment } from '../deployment.js'
import { startDelayProxy, type DelayProxy } from '../delay-proxy.js'
import { loadComputeDb, loadOrm, type ComputeDb, type OrmDatabase, type OrmModule } from '../loaders.js'
import { openOrm, runCreateInstances } from '../orm-work.js'
import { SCHEMA, createInstancesPg, pgPool, startPostgres, type PgPool } from '../pg-baseline.js'

interface Run {
  completion: Summary
  replicated?: Summary
  calls: number[]
  bytesPerVm?: number
}

const SYS = {
  sim: 'Causeway (sim, in-process)',
  p2p: 'Causeway (OS processes, libp2p)',
  pg: 'central PostgreSQL',
  sqlite: 'SQLite via the ORM (1 site)',
} as const

const share = (n: number, sites: number, k: number) => Math.floor(n / sites) + (k < n % sites ? 1 : 0)

export const controlPlane: Benchmark = {
  name: 'control-plane',
  description:
    'The reference service\'s "boot a VM" call (examples/compute-db `createInstances` with `boot: true`: instance + metadata + system metadata + info cache in one transaction, the joined read, the create action, then four compare-and-swap task-state transitions to ACTIVE), N VMs in parallel with a total of 50 concurrent requests spread evenly across the sites. Completion time = until every site has its share acknowledged; "replicated" = until every site also has every other site\'s VMs.',
  quick: true,
  async run(ctx) {
    let cdb: ComputeDb
    let orm: OrmModule
    try {
      cdb = await loadComputeDb()
      orm = await loadOrm()
    } catch (e) {
      throw e instanceof SkipError ? e : new SkipError(errMsg(e))
    }
    const N = ctx.pick({ tiny: 12, quick: 100, full: 500 })
    const sitesList = ctx.pick({ tiny: [1, 2], quick: [1, 8], full: [1, 2, 4, 6, 8] })
    const lats = ctx.pick({ tiny: [10], quick: [10, 50], full: [10, 50] })
    const totalConc = ctx.pick({ tiny: 4, quick: 50, full: 50 })
    const reps = ctx.reps({ tiny: 1, quick: 1, full: 3 })
    const maxS = sitesList[sitesList.length - 1]!
    const maxL = lats[lats.length - 1]!
    ctx.param('vms', N)
    ctx.param('totalConcurrency', totalConc)
    ctx.param('sites', sitesList)
    ctx.param('latenciesMs', lats)
    ctx.param('repetitions', reps)
    ctx.param('service', cdb.source)
    ctx.param('causewayDurability', 'fsync')
    if (ctx.mode === 'quick') ctx.note('quick mode: 100 VMs over 1 and 8 sites, one repetition; the full run (`npm run bench -- --only control-plane`) boots 500 VMs over 1, 2, 4, 6 and 8 sites, 3 repetitions, and adds one OS process per site over libp2p.')

    const results = new Map<string, Map<string, Run>>()
    const put = (sys: string, S: number, L: number, r: Run) => {
      if (!results.has(sys)) results.set(sys, new Map())
      results.get(sys)!.set(`${S}/${L}`, r)
    }
    const get = (sys: string, S: number, L: number) => results.get(sys)?.get(`${S}/${L}`)
    const withP2p = ctx.mode === 'full' || process.env['BENCH_CP_P2P'] === '1'
    const steps = 1 + (lats.length * sitesList.length + 1) * (withP2p ? 2 : 1) + lats.length * sitesList.length
    let step = 0
    const tick = (label: string) => ctx.progress(++step, steps, label)

    // ------------------------------------------------------------------ SQLite (single site)
    try {
      const completions: number[] = []
      let calls: number[] = []
      await repeat(reps, 1, async (rep) => {
        const db = (await orm.openDatabase({ backend: 'sqlite', file: path.join(ctx.tmp, `sqlite-${rep + 1}.db`), models: cdb.models })) as OrmDatabase
        try {
          const n = rep < 0 ? Math.min(N, 20) : N
          const t0 = performance.now()
          const c = await runCreateInstances(cdb, db, n, totalConc, `sqlite${rep + 1}`)
          if (rep >= 0) {
            completions.push(performance.now() - t0)
            calls = calls.concat(c)
          }
        } finally {
          await db.close()
        }
      })
      for (const S of sitesList) for (const L of [0, ...lats]) put(SYS.sqlite, S, L, { completion: summarize(completions), calls })
    } catch (e) {
      ctx.skip(SYS.sqlite, errMsg(e))
    }
    tick('sqlite')

    // ------------------------------------------------------------------ Causeway, in-process sim
    const simPlan: Array<[number, number]> = []
    for (const L of lats) for (const S of sitesList) simPlan.push([S, L])
    simPlan.push([maxS, 0])
    for (const [S, L] of simPlan) {
      const ids = Array.from({ length: S }, (_, k) => `s${k + 1}`)
      let cluster: Awaited<ReturnType<typeof openSimCluster>> | undefined
      const dbs: OrmDatabase[] = []
      try {
        cluster = await openSimCluster({ ids, latencyMs: L, tmp: ctx.tmp, durability: 'fsync', conflicts: orm.ormConflicts?.(cdb.models) })
        for (const site of cluster.sites) dbs.push(await openOrm(site, cdb.models))
        const conc = Math.max(1, Math.ceil(totalConc / S))
        const completions: number[] = []
        const replicated: number[] = []
        const bytes: number[] = []
        let calls: number[] = []
        await repeat(reps, 1, async (rep) => {
          const n = rep < 0 ? Math.min(N, Math.max(4 * S, 20)) : N
          cluster!.resetBytes()
          const t0 = performance.now()
          const per = await Promise.all(ids.map((id, k) => runCreateInstances(cdb, dbs[k]!, share(n, S, k), conc, `${id}r${rep + 1}`)))
          const t1 = performance.now()
          await cluster!.net.settle(120_000)
          const t2 = performance.now()
          if (rep < 0) return
          completions.push(t1 - t0)
          replicated.push(t2 - t0)
          const b = cluster!.bytes()
          if (b !== undefined) bytes.push(b / n)
          calls = calls.concat(per.flat())
        })
        put(SYS.sim, S, L, { completion: summarize(completions), replicated: summarize(replicated), calls, bytesPerVm: bytes.length ? summarize(bytes).median : undefined })
      } catch (e) {
        ctx.skip(`${SYS.sim} ${S} sites ${L} ms`, errMsg(e))
      } finally {
        for (const d of dbs) await d.close().catch(() => undefined)
        await cluster?.close()
      }
      tick(`causeway sim ${S}×${L}ms`)
    }

    // ------------------------------------------------------------------ Causeway, OS processes over libp2p (full)
    if (withP2p) {
      for (const [S, L] of simPlan) {
        const ids = Array.from({ length: S }, (_, k) => `s${k + 1}`)
        let d: Awaited<ReturnType<typeof openDeployment>> | undefined
        try {
          d = await openDeployment({ ids, latencyMs: L, tmp: ctx.tmp, durability: 'fsync', orm: true })
          const conc = Math.max(1, Math.ceil(totalConc / S))
          const completions: number[] = []
          const replicated: number[] = []
          const bytes: number[] = []
          let calls: number[] = []
          await repeat(reps, 1, async (rep) => {
            const n = rep < 0 ? Math.min(N, 4 * S) : N
            // every site watches the instances rows of the others (one key per VM row)
            d!.resetBytes()
            const t0 = performance.now()
            const per = await Promise.all(ids.map((id, k) => d!.workers.get(id)!.call<{ samples: number[] }>('cp', { n: share(n, S, k), concurrency: conc, prefix: `${id}r${rep + 1}` }, 600_000)))
            const t1 = performance.now()
            await Promise.all(ids.map((id) => d!.workers.get(id)!.call('idle', { timeoutMs: 120_000 }, 130_000)))
            const t2 = performance.now()
            if (rep < 0) return
            completions.push(t1 - t0)
            replicated.push(t2 - t0)
            bytes.push(d!.bytes() / n)
            calls = calls.concat(per.flatMap((p) => p.samples))
          })
          put(SYS.p2p, S, L, { completion: summarize(completions), replicated: summarize(replicated), calls, bytesPerVm: summarize(bytes).median })
        } catch (e) {
          ctx.skip(`${SYS.p2p} ${S} sites ${L} ms`, errMsg(e))
        } finally {
          await d?.close()
        }
        tick(`causeway libp2p ${S}×${L}ms`)
      }
      ctx.note('Multi-process mode: "replicated" is measured until every site reports idle (all writes it received applied), an approximation of full convergence.')
    }

    // ------------------------------------------------------------------ central PostgreSQL through the emulated WAN
    await runPostgres(ctx, N, sitesList, lats, totalConc, reps, (S, L, r) => put(SYS.pg, S, L, r), tick)
    ctx.skip('MariaDB Galera cluster (stretch goal)', 'not implemented: the harness has no Galera runner yet (Debian\'s mariadb-server + galera-4, one node per site through the delay proxy)')

    // ------------------------------------------------------------------ tables and figures
    const sysOrder = [SYS.sim, SYS.p2p, SYS.pg]
    const rows: Array<Array<string | number | null>> = []
    for (const sys of sysOrder) {
      for (const L of [...lats, 0]) {
        for (const S of sitesList) {
          const r = get(sys, S, L)
          if (!r) continue
          const l = latencies(r.calls)
          rows.push([sys, S, L, round(r.completion.median, 0), `${round(r.completion.min, 0)}–${round(r.completion.max, 0)}`, r.replicated ? round(r.replicated.median, 0) : null, round(l.p50, 1), round(l.p99, 1), r.bytesPerVm !== undefined ? round(r.bytesPerVm, 0) : null])
        }
      }
    }
    const sq = get(SYS.sqlite, maxS, maxL)
    if (sq) {
      const l = latencies(sq.calls)
      rows.push([SYS.sqlite, 1, 0, round(sq.completion.median, 0), `${round(sq.completion.min, 0)}–${round(sq.completion.max, 0)}`, null, round(l.p50, 1), round(l.p99, 1), null])
    }
    ctx.table({
      id: 'completion',
      title: `Booting ${N} VMs: completion time, per-call latency and bytes between sites`,
      columns: ['system', 'sites', 'one-way latency (ms)', 'completion (ms, median)', 'min–max', 'replicated everywhere (ms)', 'per-call p50 (ms)', 'per-call p99 (ms)', 'bytes between sites per VM'],
      rows,
      conclusion: 'Causeway serves every call at the local site, so completion should stay flat as latency grows; the central database pays WAN round trips on every statement for every remote site.',
    })

    const line = (sys: string, L: number): Series => ({ name: `${sys.split(' (')[0]}${sys.includes('libp2p') ? ' libp2p' : ''} ${L} ms`, points: sitesList.filter((S) => get(sys, S, L)).map((S) => [S, get(sys, S, L)!.completion.median]) })
    const series: Series[] = []
    for (const sys of sysOrder) for (const L of lats) if (results.get(sys)) series.push(line(sys, L))
    if (sq) series.push({ name: 'SQLite, 1 site (upper bound)', points: sitesList.map((S) => [S, sq.completion.median]) })
    ctx.figure({
      id: 'completion-vs-sites',
      kind: 'line',
      title: `Time to boot ${N} VMs vs number of sites`,
      xLabel: 'sites (requests spread evenly)',
      yLabel: 'completion time (ms)',
      logY: true,
      series: series.filter((s) => s.points.length > 0),
      conclusion: 'Causeway\'s lines stay flat and close to each other at 10 and 50 ms because no call leaves its site; the central PostgreSQL lines climb with latency and with the share of requests that come from remote sites.',
      reproduce: ctx.reproduce,
    })
    const cdf: Series[] = []
    for (const sys of [SYS.sim, SYS.p2p, SYS.pg]) {
      const r = get(sys, maxS, maxL)
      if (r) cdf.push({ name: `${sys.split(' (')[0]}${sys.includes('libp2p') ? ' libp2p' : ''}`, points: cdfPoints(r.calls) })
    }
    if (sq) cdf.push({ name: 'SQLite (1 site)', points: cdfPoints(sq.calls) })
    ctx.figure({
      id: 'call-cdf',
      kind: 'cdf',
      title: `Per-call latency CDF, ${maxS} sites at ${maxL} ms one-way`,
      xLabel: 'ms per "boot a VM" call (log)',
      yLabel: 'fraction of calls',
      logX: true,
      series: cdf,
      conclusion: 'Causeway\'s curve should sit near SQLite\'s (local calls only); the central database\'s curve is shifted right by several WAN round trips for every remote site\'s calls.',
      reproduce: ctx.reproduce,
    })

    // ------------------------------------------------------------------ headlines
    const c50 = get(SYS.sim, maxS, maxL)
    const c0 = get(SYS.sim, maxS, 0)
    const p50 = get(SYS.pg, maxS, maxL)
    if (c50 && c0) {
      const r = c50.completion.median / c0.completion.median
      ctx.headline({ metric: `completion at ${maxS} sites, ${maxL} ms vs 0 ms (Causeway sim)`, value: round(r, 2), unit: '×', goal: '≤ 1.2×', met: r <= 1.2 })
    }
    if (c50 && p50) {
      const r = p50.completion.median / c50.completion.median
      ctx.headline({ metric: `Causeway vs central PostgreSQL at ${maxS} sites, ${maxL} ms (speed-up)`, value: round(r, 2), unit: '×', goal: '≥ 5×', met: r >= 5 })
    } else ctx.headline({ metric: 'Causeway vs central PostgreSQL (speed-up)', value: null, unit: '×', goal: '≥ 5×' })
    if (c50 && sq) {
      const r = latencies(c50.calls).p50 / latencies(sq.calls).p50
      ctx.headline({ metric: `per-call p50 at ${maxS} sites, ${maxL} ms vs local SQLite`, value: round(r, 2), unit: '×', goal: '≤ 2×', met: r <= 2 })
    }
    if (c50?.bytesPerVm !== undefined) ctx.headline({ metric: `bytes between sites per VM (${maxS} sites)`, value: round(c50.bytesPerVm, 0), unit: 'B' })
  },
}

async function runPostgres(
  ctx: BenchContext,
  N: number,
  sitesList: number[],
  lats: number[],
  totalConc: number,
  reps: number,
  put: (S: number, L: number, r: Run) => void,
  tick: (label: string) => void,
): Promise<void> {
  let server: Awaited<ReturnType<typeof startPostgres>>
  try {
    server = await startPostgres(ctx.tmp)
  } catch (e) {
    ctx.skip(SYS.pg, errMsg(e))
    for (let i = 0; i < lats.length * sitesList.length; i++) tick('postgres skipped')
    return
  }
  try {
    const admin = await pgPool(server.url, 1)
    await admin.query(SCHEMA)
    const u = new URL(server.url)
    for (const L of lats) {
      for (const S of sitesList) {
        const proxies: DelayProxy[] = []
        const pools: PgPool[] = []
        try {
          const conc = Math.max(1, Math.ceil(totalConc / S))
          for (let k = 0; k < S; k++) {
            // site 1 is where the database runs (no WAN); the other sites reach it through the WAN
            const p = await startDelayProxy({ targetHost: u.hostname, targetPort: Number(u.port), latencyMs: k === 0 ? 0 : L })
            proxies.push(p)
            const url = new URL(server.url)
            url.port = String(p.port)
            pools.push(await pgPool(url.toString(), conc))
          }
          const completions: number[] = []
          const bytes: number[] = []
          let calls: number[] = []
          await repeat(reps, 1, async (rep) => {
            const n = rep < 0 ? Math.min(N, 4 * S) : N
            for (const p of proxies) p.resetCounters()
            const t0 = performance.now()
            const per = await Promise.all(pools.map((pool, k) => createInstancesPg(pool, share(n, S, k), conc, `pg${S}x${L}s${k + 1}r${rep + 1}`)))
            const t1 = performance.now()
            if (rep < 0) return
            completions.push(t1 - t0)
            // bytes that crossed the WAN: remote sites only
            bytes.push(proxies.slice(1).reduce((s, p) => s + p.bytesUp + p.bytesDown, 0) / n)
            calls = calls.concat(per.flat())
          })
          put(S, L, { completion: summarize(completions), calls, bytesPerVm: summarize(bytes).median })
        } catch (e) {
          ctx.skip(`${SYS.pg} ${S} sites ${L} ms`, errMsg(e))
        } finally {
          for (const p of pools) await p.end().catch(() => undefined)
          for (const p of proxies) await p.close()
        }
        tick(`postgres ${S}×${L}ms`)
      }
    }
    await admin.end()
    ctx.note('PostgreSQL runs the same calls as the ORM service written directly in SQL (`pg`, one pooled connection per in-flight request, 12 round trips per VM including BEGIN/COMMIT; CAS updates use RETURNING, so they need one round trip where the ORM does an update and a read). Site 1 is co-located with the server; the other sites reach it through the TCP delay proxy. Bytes per VM count WAN traffic only.')
  } finally {
    await server.stop()
  }
}
