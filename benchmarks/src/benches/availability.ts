/**
 * availability: local put/get latency at one site of a 3-site sim deployment, at 0, 10 and 50 ms
 * emulated one-way latency, with replication traffic flowing, and during a partition. Always
 * available means these numbers do not grow with WAN latency (reported, never asserted).
 */
import { latencies, repeat, round, sleep, summarize, type Benchmark } from '../harness.js'
import { openSimCluster } from '../cluster.js'

export const availability: Benchmark = {
  name: 'availability',
  description:
    'Local `put`/`get` latency (sequential, one session) at site a of a 3-site deployment on `@causeway/sim` (real LevelDB, relaxed durability), while site b writes 200 keys/s that replicate to a: at 0, 10 and 50 ms one-way emulated latency, then with a partitioned from b and c.',
  quick: true,
  async run(ctx) {
    const lats = [0, 10, 50]
    const ops = ctx.pick({ tiny: 50, quick: 400, full: 2000 })
    const reps = ctx.reps({ tiny: 1, quick: 3, full: 5 })
    ctx.param('opsPerRep', ops)
    ctx.param('repetitions', reps)
    ctx.param('latenciesMs', lats)
    type Row = { putP50: number[]; putP99: number[]; getP50: number[]; getP99: number[] }
    const results = new Map<string, Row>()
    const order: string[] = []
    let step = 0
    const total = lats.length * 2
    for (const L of lats) {
      const cluster = await openSimCluster({ ids: ['a', 'b', 'c'], latencyMs: L, tmp: ctx.tmp })
      const [a, b] = cluster.sites as [typeof cluster.sites[0], typeof cluster.sites[0]]
      let stopBg = false
      const bs = b.session()
      const bg = (async () => {
        let i = 0
        while (!stopBg) {
          await bs.put(`bg/${i++ % 500}`, { n: i, pad: 'x'.repeat(64) })
          await sleep(5)
        }
      })()
      try {
        for (const phase of ['connected', 'partitioned'] as const) {
          if (phase === 'partitioned') cluster.net.partition(['a'], ['b', 'c'])
          const label = `${L} ms${phase === 'partitioned' ? ', partitioned' : ''}`
          const row: Row = { putP50: [], putP99: [], getP50: [], getP99: [] }
          await repeat(reps, 1, async (rep) => {
            const s = a.session()
            const puts: number[] = []
            const gets: number[] = []
            const n = rep < 0 ? Math.max(20, ops / 4) : ops
            for (let i = 0; i < n; i++) {
              const key = `local/${i % 1000}`
              let t = performance.now()
              await s.put(key, { i, pad: 'y'.repeat(64) })
              puts.push(performance.now() - t)
              t = performance.now()
              await s.get(i % 3 === 0 ? `bg/${i % 500}` : key)
              gets.push(performance.now() - t)
            }
            if (rep < 0) return
            const p = latencies(puts)
            const g = latencies(gets)
            row.putP50.push(p.p50)
            row.putP99.push(p.p99)
            row.getP50.push(g.p50)
            row.getP99.push(g.p99)
          })
          results.set(label, row)
          order.push(label)
          ctx.progress(++step, total, label)
        }
        cluster.net.heal()
      } finally {
        stopBg = true
        await bg.catch(() => undefined)
        await cluster.close()
      }
    }
    const med = (xs: number[]) => summarize(xs)
    const cell = (xs: number[]) => {
      const s = med(xs)
      return `${s.median.toFixed(3)} (${s.min.toFixed(3)}–${s.max.toFixed(3)})`
    }
    ctx.table({
      id: 'latency',
      title: 'Local operation latency at site a (ms; median over repetitions (min–max))',
      columns: ['one-way latency', 'put p50', 'put p99', 'get p50', 'get p99'],
      rows: order.map((l) => {
        const r = results.get(l)!
        return [l, cell(r.putP50), cell(r.putP99), cell(r.getP50), cell(r.getP99)]
      }),
      conclusion: 'Each column should stay flat down the table: a local operation never waits for another site, whatever the WAN latency and even when partitioned.',
    })
    ctx.figure({
      id: 'latency',
      kind: 'bar',
      title: 'Local put/get latency vs emulated WAN latency (site a)',
      xLabel: 'one-way latency between sites',
      yLabel: 'ms (median of repetitions)',
      categories: order,
      series: [
        { name: 'put p50', points: order.map((l, i) => [i, med(results.get(l)!.putP50).median]) },
        { name: 'put p99', points: order.map((l, i) => [i, med(results.get(l)!.putP99).median]) },
        { name: 'get p50', points: order.map((l, i) => [i, med(results.get(l)!.getP50).median]) },
        { name: 'get p99', points: order.map((l, i) => [i, med(results.get(l)!.getP99).median]) },
      ],
      conclusion: 'Bars of the same colour have the same height across the groups: WAN latency and partitions do not reach local operations (always available). Differences are CPU noise from the replication traffic.',
      reproduce: ctx.reproduce,
    })
    const p0 = results.get('0 ms')
    const p50 = results.get('50 ms')
    const pp = results.get('50 ms, partitioned')
    if (p0 && p50) {
      const r = med(p50.putP99).median / med(p0.putP99).median
      ctx.headline({ metric: 'put p99 at 50 ms / at 0 ms', value: round(r, 2), unit: '×', goal: '≈ 1 (does not grow)', met: r <= 1.5 })
      ctx.headline({ metric: 'put p99 at 50 ms', value: round(med(p50.putP99).median, 3), unit: 'ms' })
      ctx.headline({ metric: 'get p99 at 50 ms', value: round(med(p50.getP99).median, 3), unit: 'ms' })
    }
    if (pp) ctx.headline({ metric: 'put p99 at 50 ms, partitioned', value: round(med(pp.putP99).median, 3), unit: 'ms' })
  },
}
