/**
 * replication-sim: visibility latency (write issued at a → applied at b) vs emulated latency at
 * ~1k writes/s, and time to converge after a partition during which W writes accumulated.
 */
import { cdfPoints, errMsg, latencies, repeat, round, sleep, summarize, withTimeout, type Benchmark, type Series } from '../harness.js'
import { openSimCluster, paced, waitApplied } from '../cluster.js'

export const replicationSim: Benchmark = {
  name: 'replication-sim',
  description:
    'Two sites on `@causeway/sim` (real LevelDB, relaxed durability). Visibility latency: site a writes unique keys at ~1,000 writes/s through 16 sessions; for each key, the time from issuing the put at a to b\'s `onApplied` reporting it. Convergence: a is partitioned from b for T seconds while it takes W writes; after heal, the time until b has applied all of them and until `net.settle()` resolves.',
  quick: true,
  async run(ctx) {
    const lats = ctx.pick({ tiny: [10], quick: [10, 50], full: [0, 10, 50] })
    const seconds = ctx.pick({ tiny: 0.3, quick: 2, full: 5 })
    const rate = 1000
    const reps = ctx.reps({ tiny: 1, quick: 2, full: 3 })
    const parts = ctx.pick({ tiny: [[0.3, 200]], quick: [[1, 2000]], full: [[1, 1000], [5, 5000], [5, 20000]] }) as Array<[number, number]>
    ctx.param('ratePerSec', rate)
    ctx.param('secondsPerRep', seconds)
    ctx.param('repetitions', reps)
    ctx.param('partitions [T s, W writes]', parts)
    const total = lats.length + parts.length
    let step = 0
    const cdf: Series[] = []
    const rows: Array<Array<string | number | null>> = []
    const p50s: Array<[number, number]> = []
    const p99s: Array<[number, number]> = []
    for (const L of lats) {
      const cluster = await openSimCluster({ ids: ['a', 'b'], latencyMs: L, tmp: ctx.tmp })
      const [a, b] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0]]
      const repP50: number[] = []
      const repP99: number[] = []
      let all: number[] = []
      let bytesPerWrite = NaN
      try {
        const sessions = Array.from({ length: 16 }, () => a.session())
        await repeat(reps, 1, async (rep) => {
          const n = Math.round(rate * (rep < 0 ? Math.min(0.5, seconds) : seconds))
          const prefix = `vis${rep + 1}/`
          const issued = new Float64Array(n)
          const vis: number[] = []
          const w = waitApplied(b, (k) => k.startsWith(prefix), n, (k, t) => {
            const i = Number(k.slice(prefix.length))
            vis.push(t - issued[i]!)
          })
          cluster.resetBytes()
          await paced(sessions, n, rate, (i) => `${prefix}${i}`, (i) => ({ i, at: 'a', pad: 'v'.repeat(32) }), (i) => (issued[i] = performance.now()))
          try {
            await withTimeout(w.done, 30_000, () => `visibility at ${L} ms: ${w.seen()}/${n} applied at b (b pendingIn=${b.status().pendingIn}, a pendingOut=${a.status().peers.map((p) => p.pendingOut).join(',')})`)
          } finally {
            w.stop()
          }
          if (rep < 0) return
          const s = latencies(vis)
          repP50.push(s.p50)
          repP99.push(s.p99)
          all = all.concat(vis)
          const bytes = cluster.bytes()
          if (bytes !== undefined) bytesPerWrite = bytes / n
        })
      } finally {
        await cluster.close()
      }
      const p50 = summarize(repP50)
      const p99 = summarize(repP99)
      p50s.push([L, p50.median])
      p99s.push([L, p99.median])
      cdf.push({ name: `${L} ms one-way`, points: cdfPoints(all) })
      rows.push([L, `${p50.median.toFixed(1)} (${p50.min.toFixed(1)}–${p50.max.toFixed(1)})`, `${p99.median.toFixed(1)} (${p99.min.toFixed(1)}–${p99.max.toFixed(1)})`, round(p50.median - L, 1), round(p99.median - L, 1), Number.isFinite(bytesPerWrite) ? round(bytesPerWrite, 0) : null])
      if (L === 10 || L === 50) {
        ctx.headline({ metric: `visibility p50 at ${L} ms`, value: round(p50.median, 1), unit: 'ms', goal: `≤ ${L + 5} ms`, met: p50.median <= L + 5 })
        ctx.headline({ metric: `visibility p99 at ${L} ms`, value: round(p99.median, 1), unit: 'ms', goal: `≤ ${L + 25} ms`, met: p99.median <= L + 25 })
      }
      ctx.progress(++step, total, `visibility ${L} ms`)
    }
    ctx.table({
      id: 'visibility',
      title: `Visibility latency at ~${rate} writes/s (ms; median of repetitions (min–max))`,
      columns: ['one-way latency (ms)', 'p50', 'p99', 'p50 − latency', 'p99 − latency', 'sim bytes sent per write (both directions)'],
      rows,
      conclusion: 'The excess over the one-way latency (columns 4 and 5) is what the engine itself adds: local commit, batching, dep_check and apply at the receiver. It should stay small and roughly constant as latency grows.',
    })
    ctx.figure({
      id: 'visibility-cdf',
      kind: 'cdf',
      title: 'Visibility latency CDF (sim, ~1k writes/s)',
      xLabel: 'ms from put issued at a to applied at b',
      yLabel: 'fraction of writes',
      series: cdf,
      conclusion: 'Each curve should rise steeply just right of its one-way latency: replication adds a small, bounded delay on top of the network.',
      reproduce: ctx.reproduce,
    })

    // ---------------------------------------------------------------- partition + heal
    const convRows: Array<Array<string | number | null>> = []
    const convSeries: Array<[number, number]> = []
    for (const [T, W] of parts) {
      const L = 10
      const cluster = await openSimCluster({ ids: ['a', 'b'], latencyMs: L, tmp: ctx.tmp })
      const [a, b] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0]]
      try {
        const samplesApplied: number[] = []
        const samplesSettle: number[] = []
        await repeat(Math.max(1, reps - 1), 0, async (rep) => {
          const prefix = `part${rep}/`
          cluster.net.partition(['a'], ['b'])
          const sessions = Array.from({ length: 16 }, () => a.session())
          const t0 = performance.now()
          await paced(sessions, W, W / T, (i) => `${prefix}${i}`, (i) => ({ i, pad: 'p'.repeat(32) }), () => undefined)
          const left = T * 1000 - (performance.now() - t0)
          if (left > 0) await sleep(left)
          const w = waitApplied(b, (k) => k.startsWith(prefix), W)
          const th = performance.now()
          cluster.net.heal()
          try {
            await withTimeout(w.done, ctx.pick({ quick: 45_000, full: 120_000 }), () => `convergence after partition: ${w.seen()}/${W} applied at b (b pendingIn=${b.status().pendingIn})`)
            samplesApplied.push(performance.now() - th)
            await cluster.net.settle(120_000)
            samplesSettle.push(performance.now() - th)
          } finally {
            w.stop()
          }
        })
        const ap = summarize(samplesApplied)
        const st = summarize(samplesSettle)
        convRows.push([T, W, round(ap.median, 0), round(st.median, 0), round((W / ap.median) * 1000, 0)])
        convSeries.push([W, ap.median])
      } catch (e) {
        ctx.skip(`partition T=${T}s W=${W}`, errMsg(e))
      } finally {
        await cluster.close()
      }
      ctx.progress(++step, total, `partition ${T}s/${W}`)
    }
    if (convRows.length) {
      ctx.table({
        id: 'convergence',
        title: 'Convergence after a partition (10 ms one-way latency)',
        columns: ['partition T (s)', 'writes W during it', 'all W applied at b after heal (ms)', 'net.settle() after heal (ms)', 'catch-up rate (writes/s)'],
        rows: convRows,
        conclusion: 'Catch-up is a streaming of the backlog from the version vectors (anti-entropy): time grows linearly with W, not with T.',
      })
      ctx.figure({
        id: 'convergence',
        kind: 'line',
        title: 'Time to converge after heal vs backlog',
        xLabel: 'writes accumulated during the partition',
        yLabel: 'ms until all applied at b',
        series: [{ name: 'Causeway (sim, 10 ms)', points: convSeries }],
        conclusion: 'A roughly linear line: the backlog drains at the engine\'s catch-up rate.',
        reproduce: ctx.reproduce,
      })
    }
  },
}
