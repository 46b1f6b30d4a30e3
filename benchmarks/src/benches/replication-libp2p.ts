/**
 * replication-libp2p: two sites in separate OS processes replicating over libp2p (TCP + Noise +
 * Yamux) on loopback: throughput site to site, visibility latency at 0/10/50 ms emulated latency
 * (the adapter's `latencyMs`), bytes on the wire per replicated write (counting TCP proxy).
 */
import { pack } from 'msgpackr'
import { SkipError, cdfPoints, errMsg, latencies, repeat, round, summarize, type Benchmark, type Series } from '../harness.js'
import { openDeployment, type Deployment } from '../deployment.js'
import { loadLibp2p, loadOpenSite } from '../loaders.js'
import type { Worker } from '../workers.js'
import type { SiteStatus } from '@causeway/core'

async function diag(a: Worker, b: Worker): Promise<string> {
  try {
    const sa = await a.call<SiteStatus>('status', {}, 5000)
    const sb = await b.call<SiteStatus>('status', {}, 5000)
    return `a: ${sa.peers.map((p) => `${p.id} ${p.state} pendingOut=${p.pendingOut}`).join(', ')}; b: pendingIn=${sb.pendingIn}, ${sb.peers.map((p) => `${p.id} ${p.state}`).join(', ')}`
  } catch (e) {
    return `status unavailable: ${errMsg(e)}`
  }
}

export const replicationLibp2p: Benchmark = {
  name: 'replication-libp2p',
  description:
    'Sites a and b as separate OS processes on loopback, replicating over `@causeway/libp2p` (TCP + Noise + Yamux), relaxed durability. Throughput: a writes N small values (16 B) from 256 sessions as fast as it can; writes/s = N / time until b has applied all N. Visibility: a writes at ~1,000 writes/s; per key, time from put issued at a to applied at b (clocks of one machine). Bytes: everything that crossed a counting TCP proxy in front of each site, per replicated write.',
  quick: true,
  async run(ctx) {
    try {
      await loadLibp2p()
      await loadOpenSite()
    } catch (e) {
      throw e instanceof SkipError ? e : new SkipError(errMsg(e))
    }
    const lats = ctx.pick({ tiny: [0], quick: [0, 10, 50], full: [0, 10, 50] })
    const N = ctx.pick({ tiny: 500, quick: 10_000, full: 100_000 })
    const visSeconds = ctx.pick({ tiny: 0.3, quick: 1.5, full: 5 })
    const reps = ctx.reps({ tiny: 1, quick: 2, full: 3 })
    const valueSize = 16
    const encoded = pack('x'.repeat(valueSize)).length
    ctx.param('throughputWrites', N)
    ctx.param('valueBytes', valueSize)
    ctx.param('visibilityRate', 1000)
    ctx.param('visibilitySeconds', visSeconds)
    ctx.param('repetitions', reps)
    const total = lats.length
    let step = 0
    const rows: Array<Array<string | number | null>> = []
    const cdf: Series[] = []
    let tput: ReturnType<typeof summarize> | undefined
    let bytesPerWrite: number | undefined
    let localRate: number | undefined
    for (const L of lats) {
      let d: Deployment
      try {
        d = await openDeployment({ ids: ['a', 'b'], latencyMs: L, tmp: ctx.tmp })
      } catch (e) {
        if (L === lats[0]) throw new SkipError(`could not start a 2-process libp2p deployment: ${errMsg(e)}`)
        ctx.skip(`latency ${L} ms`, errMsg(e))
        continue
      }
      const a = d.workers.get('a')!
      const b = d.workers.get('b')!
      try {
        // ------------------------------------------------ throughput (only at 0 ms: it is CPU bound)
        if (L === lats[0]) {
          const samples: number[] = []
          const bpw: number[] = []
          const local: number[] = []
          await repeat(reps, 1, async (rep) => {
            const n = rep < 0 ? Math.round(N / 10) : N
            const prefix = `tp${rep + 1}/`
            await b.call('watch', { prefix, n })
            d.resetBytes()
            const t0 = performance.now()
            const wr = await a.call<{ startedAt: number; endedAt: number }>('write', { prefix, n, concurrency: 256, valueSize }, 300_000)
            const r = await b.call<{ seen: number; n: number }>('watchResult', { prefix, timeoutMs: ctx.pick({ quick: 30_000, full: 300_000 }) }, 310_000)
            const ms = performance.now() - t0
            if (r.seen < n) throw new Error(`b applied ${r.seen}/${n} writes within the timeout (${await diag(a, b)})`)
            if (rep >= 0) {
              samples.push((n * 1000) / ms)
              bpw.push(d.bytes() / n)
              local.push((n * 1000) / (wr.endedAt - wr.startedAt))
            }
          })
          tput = summarize(samples)
          localRate = summarize(local).median
          bytesPerWrite = summarize(bpw).median
          ctx.headline({ metric: 'replicated writes/s site to site (libp2p, 16 B values)', value: round(tput.median, 0), unit: 'writes/s', goal: '≥ 50,000', met: tput.median >= 50_000 })
          ctx.headline({ metric: 'bytes on the wire per replicated write', value: round(bytesPerWrite, 1), unit: 'B', goal: `value encodes to ${encoded} B` })
          if (bytesPerWrite < encoded) ctx.note('Bytes per write below the encoded value size: the proxies may have been bypassed (e.g. a direct connection learned through identify); treat the byte figures as a lower bound.')
        }
        // ------------------------------------------------ visibility at ~1k writes/s
        const p50s: number[] = []
        const p99s: number[] = []
        let all: number[] = []
        await repeat(reps, 1, async (rep) => {
          const n = Math.round(1000 * (rep < 0 ? Math.min(0.5, visSeconds) : visSeconds))
          const prefix = `vis${rep + 1}/`
          await b.call('watch', { prefix, n })
          const w = await a.call<{ issued: number[] }>('write', { prefix, n, concurrency: 16, rate: 1000, valueSize, withTimes: true }, 120_000)
          const r = await b.call<{ seen: number; times: number[] }>('watchResult', { prefix, withTimes: true, timeoutMs: ctx.pick({ quick: 20_000, full: 30_000 }) }, 40_000)
          if (r.seen < n) throw new Error(`b applied ${r.seen}/${n} writes within the time limit at ${L} ms (${await diag(a, b)})`)
          const vis = r.times.map((t, i) => t - w.issued[i]!)
          if (rep < 0) return
          const s = latencies(vis)
          p50s.push(s.p50)
          p99s.push(s.p99)
          all = all.concat(vis)
        })
        const p50 = summarize(p50s)
        const p99 = summarize(p99s)
        rows.push([L, `${p50.median.toFixed(1)} (${p50.min.toFixed(1)}–${p50.max.toFixed(1)})`, `${p99.median.toFixed(1)} (${p99.min.toFixed(1)}–${p99.max.toFixed(1)})`, round(p50.median - L, 1), round(p99.median - L, 1)])
        cdf.push({ name: `${L} ms one-way`, points: cdfPoints(all) })
        ctx.headline({ metric: `visibility p50 at ${L} ms (libp2p)`, value: round(p50.median, 1), unit: 'ms', goal: `≤ ${L + 5} ms`, met: p50.median <= L + 5 })
        ctx.headline({ metric: `visibility p99 at ${L} ms (libp2p)`, value: round(p99.median, 1), unit: 'ms', goal: `≤ ${L + 25} ms`, met: p99.median <= L + 25 })
      } catch (e) {
        ctx.skip(`latency ${L} ms`, errMsg(e))
      } finally {
        await d.close()
      }
      ctx.progress(++step, total, `${L} ms`)
    }
    if (tput) {
      ctx.table({
        id: 'throughput',
        title: 'Site-to-site throughput over libp2p (loopback, 0 ms)',
        columns: ['writes', 'writes/s until applied at b (median)', 'min', 'max', 'local put rate at a (writes/s)', 'bytes on the wire per write', 'encoded value bytes', 'overhead factor'],
        rows: [[N, round(tput.median, 0), round(tput.min, 0), round(tput.max, 0), localRate !== undefined ? round(localRate, 0) : null, round(bytesPerWrite ?? NaN, 1), encoded, round((bytesPerWrite ?? NaN) / encoded, 1)]],
        conclusion: 'When the replicated rate is close to the local put rate at a, the writer, not replication, is the bottleneck. Bytes per write above the encoded value size is the cost of the key, version, dependencies, framing, Noise and Yamux (both directions, including acknowledgements).',
      })
    }
    if (rows.length) {
      ctx.table({
        id: 'visibility',
        title: 'Visibility latency over libp2p at ~1,000 writes/s (ms; median of repetitions (min–max))',
        columns: ['one-way latency (ms)', 'p50', 'p99', 'p50 − latency', 'p99 − latency'],
        rows,
        conclusion: 'Visibility should be the one-way latency plus a small constant (batching, decoding, dep_check, apply).',
      })
      ctx.figure({
        id: 'visibility-cdf',
        kind: 'cdf',
        title: 'Visibility latency CDF over libp2p (2 processes, ~1k writes/s)',
        xLabel: 'ms from put issued at a to applied at b',
        yLabel: 'fraction of writes',
        series: cdf,
        conclusion: 'Each curve should start right at its one-way latency and rise steeply; a long tail shows batching or CPU contention.',
        reproduce: ctx.reproduce,
      })
    }
  },
}
