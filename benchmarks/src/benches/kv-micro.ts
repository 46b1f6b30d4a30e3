/**
 * kv-micro: put/get throughput of one Causeway site (real LevelDB shards) next to raw classic-level
 * doing the same work — same encoded value size, same key pattern, same concurrency — as ratios
 * measured in the same run. Then the COPS-style matrix: put:get mixes, value sizes, uniform vs
 * Zipfian keys, sessions, get vs getMany, shards per site.
 */
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import { pack } from 'msgpackr'
import type { Session, Site } from '@causeway/core'
import {
  SkipError,
  errMsg,
  repeat,
  rng,
  round,
  summarize,
  throughput,
  zipf,
  type BenchContext,
  type Benchmark,
  type Summary,
} from '../harness.js'
import { loadOpenSite, type OpenSite } from '../loaders.js'

type Durability = 'fsync' | 'relaxed'

interface Store {
  label: string
  put(worker: number, key: string, value: Uint8Array): Promise<unknown>
  get(worker: number, key: string): Promise<unknown>
  getMany?(worker: number, keys: string[]): Promise<unknown>
  /** Fresh per-worker state (sessions) before a measurement. */
  reset(workers: number): void
  close(): Promise<void>
}

const pad = (i: number) => `user${String(i).padStart(8, '0')}`

function makeValue(size: number, seed: number): Uint8Array {
  const r = rng(seed)
  const v = new Uint8Array(size)
  for (let i = 0; i < size; i++) v[i] = Math.floor(r() * 256)
  return v
}

async function openRaw(dir: string, durability: Durability): Promise<Store> {
  const db = new ClassicLevel<string, Uint8Array>(dir, { valueEncoding: 'view' })
  await db.open()
  const sync = durability === 'fsync'
  return {
    label: 'raw classic-level',
    // the raw side stores the value encoded the same way Causeway encodes values (msgpackr)
    put: (_w, key, value) => db.put(key, pack(value), { sync }),
    get: (_w, key) => db.get(key),
    getMany: (_w, keys) => db.getMany(keys),
    reset() {},
    close: () => db.close(),
  }
}

async function openCauseway(openSite: OpenSite, dir: string | undefined, durability: Durability, shards: number, memory: boolean): Promise<Store> {
  const site: Site = await openSite({
    id: 'bench',
    ...(dir ? { dir } : {}),
    durability,
    shards,
    ...(memory ? { storage: 'memory' as const } : {}),
  })
  let sessions: Session[] = []
  const session = (w: number) => (sessions[w] ??= site.session())
  return {
    label: 'Causeway site',
    put: (w, key, value) => session(w).put(key, value),
    get: (w, key) => session(w).get(key),
    getMany: (w, keys) => session(w).getMany(keys),
    reset(workers) {
      sessions = Array.from({ length: workers }, () => site.session())
    },
    close: () => site.close(),
  }
}

interface Workload {
  workers: number
  /** Fraction of operations that are puts (1 = put only, 0 = get only). */
  putFraction: number
  valueSize: number
  keys: number
  distribution: 'uniform' | 'zipfian'
}

function keyGen(w: Workload, seed: number): () => number {
  const r = rng(seed)
  if (w.distribution === 'zipfian') {
    const z = zipfCache.get(w.keys) ?? zipf(w.keys, 0.99, r)
    zipfCache.set(w.keys, z)
    // the cached generator closes over the first rng; wrap with a per-worker permutation offset
    return () => z()
  }
  return () => Math.floor(r() * w.keys)
}
const zipfCache = new Map<number, () => number>()

async function runWorkload(store: Store, w: Workload, durationMs: number, seed: number): Promise<number> {
  store.reset(w.workers)
  const value = makeValue(w.valueSize, seed)
  const gens = Array.from({ length: w.workers }, (_, i) => keyGen(w, seed * 1000 + i))
  const choose = Array.from({ length: w.workers }, (_, i) => rng(seed * 7919 + i))
  const res = await throughput(w.workers, durationMs, (worker) => {
    const k = pad(gens[worker]!())
    return choose[worker]!() < w.putFraction ? store.put(worker, k, value) : store.get(worker, k)
  })
  return res.opsPerSec
}

async function prefill(store: Store, keys: number, valueSize: number): Promise<void> {
  const value = makeValue(valueSize, 1)
  store.reset(64)
  let next = 0
  await Promise.all(
    Array.from({ length: 64 }, async (_, w) => {
      while (next < keys) await store.put(w, pad(next++), value)
    }),
  )
}

interface Pair {
  causeway: Summary
  raw: Summary
  ratio: Summary
}

/** Interleaved repetitions of the same workload on both stores; ratios per repetition. */
async function compare(ctx: BenchContext, a: Store, b: Store, w: Workload, durationMs: number, reps: number): Promise<Pair> {
  const ca: number[] = []
  const rb: number[] = []
  const ratios: number[] = []
  await repeat(reps, 1, async (rep) => {
    const seed = 100 + Math.max(rep, 0)
    const short = rep < 0 ? Math.max(50, durationMs / 3) : durationMs
    const x = await runWorkload(a, w, short, seed)
    const y = await runWorkload(b, w, short, seed)
    if (rep >= 0) {
      ca.push(x)
      rb.push(y)
      ratios.push(x / y)
    }
    if (ctx.signal.aborted) throw ctx.signal.reason
  })
  return { causeway: summarize(ca), raw: summarize(rb), ratio: summarize(ratios) }
}

const mmm = (s: Summary) => `${fmtK(s.median)} (${fmtK(s.min)}–${fmtK(s.max)})`
const fmtK = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0))

export const kvMicro: Benchmark = {
  name: 'kv-micro',
  description:
    'Put and get throughput (operations/s, closed loop) of one Causeway site on real LevelDB shards next to raw `classic-level` doing the same work: same encoded value size (msgpackr), same key pattern (`user%08d`, uniform unless stated), same concurrency, one key per raw put with `sync` matching the durability mode. Ratios are per repetition, same run, interleaved.',
  quick: true,
  async run(ctx) {
    let openSite: OpenSite
    try {
      openSite = await loadOpenSite()
    } catch (e) {
      throw e instanceof SkipError ? new SkipError(`${e.message} (the raw classic-level side alone is not a comparison)`) : e
    }
    const tiny = ctx.mode === 'tiny'
    const durationMs = ctx.pick({ tiny: 60, quick: 400, full: 1500 })
    const reps = ctx.reps({ tiny: 1, quick: 3, full: 5 })
    const keys = ctx.pick({ tiny: 200, quick: 10_000, full: 100_000 })
    const valueSize = 100
    const manyWriters = tiny ? 8 : 64
    ctx.param('durationMsPerRep', durationMs)
    ctx.param('repetitions', reps)
    ctx.param('keySpace', keys)
    ctx.param('valueBytes', valueSize)
    ctx.param('shards', 4)
    if (tiny) ctx.note('tiny mode: Causeway runs on in-memory storage and the numbers are meaningless; this mode only checks the harness.')

    let dirN = 0
    const dir = (tag: string) => path.join(ctx.tmp, `${tag}-${dirN++}`)
    const site = (durability: Durability, shards = 4) => openCauseway(openSite, tiny ? undefined : dir('site'), durability, shards, tiny)

    // ---------------------------------------------------------------- core comparisons
    const coreRows: Array<Array<string | number | null>> = []
    const bars: Record<string, [number, number]> = {}
    const plan = [
      { d: 'relaxed' as Durability, writers: 1 },
      { d: 'relaxed' as Durability, writers: manyWriters },
      { d: 'fsync' as Durability, writers: 1 },
      { d: 'fsync' as Durability, writers: manyWriters },
    ]
    const extraSteps = tiny ? 0 : ctx.mode === 'quick' ? 11 : 26
    const totalSteps = plan.length + 2 + extraSteps
    let step = 0
    const tick = (label: string) => ctx.progress(++step, totalSteps, label)
    const putResults = new Map<string, Pair>()
    for (const p of plan) {
      const a = await site(p.d)
      const b = await openRaw(dir('raw'), p.d)
      try {
        const w: Workload = { workers: p.writers, putFraction: 1, valueSize, keys, distribution: 'uniform' }
        const r = await compare(ctx, a, b, w, p.d === 'fsync' ? durationMs * 1.5 : durationMs, reps)
        putResults.set(`${p.d}/${p.writers}`, r)
        coreRows.push([`put, ${p.d}`, p.writers, mmm(r.causeway), mmm(r.raw), round(r.ratio.median, 2), `${round(r.ratio.min, 2)}–${round(r.ratio.max, 2)}`])
        bars[`put ${p.d} ×${p.writers}`] = [r.causeway.median, r.raw.median]
      } finally {
        await a.close()
        await b.close()
      }
      tick(`put ${p.d} ×${p.writers}`)
    }
    // gets on a prefilled key space
    const getResults = new Map<number, Pair>()
    {
      const a = await site('relaxed')
      const b = await openRaw(dir('raw'), 'relaxed')
      try {
        await prefill(a, keys, valueSize)
        await prefill(b, keys, valueSize)
        for (const readers of [1, manyWriters]) {
          const w: Workload = { workers: readers, putFraction: 0, valueSize, keys, distribution: 'uniform' }
          const r = await compare(ctx, a, b, w, durationMs, reps)
          getResults.set(readers, r)
          coreRows.push(['get', readers, mmm(r.causeway), mmm(r.raw), round(r.ratio.median, 2), `${round(r.ratio.min, 2)}–${round(r.ratio.max, 2)}`])
          bars[`get ×${readers}`] = [r.causeway.median, r.raw.median]
          tick(`get ×${readers}`)
        }

        // ---------------------------------------------------------------- matrix on the prefilled stores
        if (!tiny) {
          const mixes: Array<[number, number]> = ctx.mode === 'full' ? [[16, 1], [4, 1], [1, 1], [1, 4], [1, 16]] : [[1, 1]]
          const mixRows: Array<Array<string | number | null>> = []
          for (const [p, g] of mixes) {
            const w: Workload = { workers: 64, putFraction: p / (p + g), valueSize, keys, distribution: 'uniform' }
            const r = await compare(ctx, a, b, w, durationMs, reps)
            mixRows.push([`${p}:${g}`, mmm(r.causeway), mmm(r.raw), round(r.ratio.median, 2)])
            tick(`mix ${p}:${g}`)
          }
          ctx.table({
            id: 'mix',
            title: 'Put:get mix (64 sessions, relaxed durability, 100 B values)',
            columns: ['put:get', 'Causeway ops/s', 'raw ops/s', 'ratio'],
            rows: mixRows,
            conclusion: 'How the Causeway/raw ratio moves between write-heavy and read-heavy mixes: the read side benefits from the site cache, the write side pays for metadata and the replication log.',
          })

          const dists: Array<'uniform' | 'zipfian'> = ['uniform', 'zipfian']
          const distRows: Array<Array<string | number | null>> = []
          for (const d of dists) {
            const w: Workload = { workers: 64, putFraction: 0.5, valueSize, keys, distribution: d }
            const r = await compare(ctx, a, b, w, durationMs, reps)
            distRows.push([d, mmm(r.causeway), mmm(r.raw), round(r.ratio.median, 2)])
            tick(`keys ${d}`)
          }
          ctx.table({
            id: 'distribution',
            title: 'Uniform vs Zipfian (θ = 0.99) keys, 1:1 put:get, 64 sessions, relaxed',
            columns: ['keys', 'Causeway ops/s', 'raw ops/s', 'ratio'],
            rows: distRows,
            conclusion: 'Skewed keys concentrate traffic on few keys: good for caches, but same-key puts serialize in the engine.',
          })

          // get vs getMany
          if (a.getMany && b.getMany) {
            const gmRows: Array<Array<string | number | null>> = []
            const sizes = ctx.mode === 'full' ? [1, 4, 16, 64] : [1, 16]
            const r = rng(5)
            for (const k of sizes) {
              const batches = Math.max(20, Math.floor(4000 / k))
              const pick = () => Array.from({ length: k }, () => pad(Math.floor(r() * keys)))
              const sets = Array.from({ length: batches }, pick)
              const timeIt = async (fn: (ks: string[]) => Promise<unknown>) => {
                const samples: number[] = []
                await repeat(reps, 1, async (rep) => {
                  a.reset(1)
                  const t0 = performance.now()
                  for (const ks of sets) await fn(ks)
                  if (rep >= 0) samples.push(((performance.now() - t0) * 1000) / (batches * k))
                })
                return summarize(samples)
              }
              const seq = await timeIt(async (ks) => {
                for (const key of ks) await a.get(0, key)
              })
              const par = await timeIt((ks) => Promise.all(ks.map((key) => a.get(0, key))))
              const many = await timeIt((ks) => a.getMany!(0, ks))
              const rawMany = await timeIt((ks) => b.getMany!(0, ks))
              gmRows.push([k, round(seq.median, 2), round(par.median, 2), round(many.median, 2), round(rawMany.median, 2), round(many.median / seq.median, 2)])
              tick(`getMany ${k}`)
            }
            ctx.table({
              id: 'getmany',
              title: 'get vs getMany: µs per key read (one session, prefilled keys)',
              columns: ['keys per call', 'k sequential gets', 'k parallel gets', 'getMany(k)', 'raw db.getMany(k)', 'getMany / sequential'],
              rows: gmRows,
              conclusion: 'getMany is the causally consistent snapshot read (COPS-GT get_trans): it costs a second round only when a dependency is newer than what the first round read, so per key it should cost no more than separate gets.',
            })
          }
        }
      } finally {
        await a.close()
        await b.close()
      }
    }

    ctx.table({
      id: 'core',
      title: 'Causeway site vs raw classic-level (ops/s, median (min–max))',
      columns: ['operation', 'concurrency', 'Causeway', 'raw classic-level', 'ratio (median)', 'ratio min–max'],
      rows: coreRows,
      conclusion: 'Ratios near 1 mean Causeway adds little over LevelDB itself; see the goals in the headlines.',
    })
    const cats = Object.keys(bars)
    ctx.figure({
      id: 'vs-raw',
      kind: 'bar',
      title: 'Causeway site vs raw classic-level, same work',
      xLabel: 'operation × concurrency',
      yLabel: 'operations / s (median)',
      categories: cats,
      series: [
        { name: 'Causeway site', points: cats.map((c, i) => [i, bars[c]![0]]) },
        { name: 'raw classic-level', points: cats.map((c, i) => [i, bars[c]![1]]) },
      ],
      logY: true,
      conclusion: 'Where the blue bar is close to the red one, Causeway\'s metadata, replication log and session bookkeeping cost little over the storage engine; durable puts at many writers should rise far above durable puts at one writer thanks to group commit.',
      reproduce: `${ctx.reproduce}`,
    })

    const relaxedMany = putResults.get(`relaxed/${manyWriters}`)
    const relaxedOne = putResults.get('relaxed/1')
    const fsyncOne = putResults.get('fsync/1')
    const fsyncMany = putResults.get(`fsync/${manyWriters}`)
    if (relaxedMany) ctx.headline({ metric: `relaxed puts vs raw, ${manyWriters} writers`, value: round(relaxedMany.ratio.median, 2), unit: '×', goal: '≥ 0.6×', met: relaxedMany.ratio.median >= 0.6 })
    if (relaxedOne) ctx.headline({ metric: 'relaxed puts vs raw, 1 writer', value: round(relaxedOne.ratio.median, 2), unit: '×', goal: '≥ 0.6×', met: relaxedOne.ratio.median >= 0.6 })
    const g1 = getResults.get(1)
    const gm = getResults.get(manyWriters)
    if (gm) ctx.headline({ metric: `gets vs raw, ${manyWriters} readers`, value: round(gm.ratio.median, 2), unit: '×', goal: '≥ 1.0×', met: gm.ratio.median >= 1.0 })
    if (g1) ctx.headline({ metric: 'gets vs raw, 1 reader', value: round(g1.ratio.median, 2), unit: '×', goal: '≥ 1.0×', met: g1.ratio.median >= 1.0 })
    if (fsyncOne && fsyncMany) {
      const gc = fsyncMany.causeway.median / fsyncOne.causeway.median
      ctx.headline({ metric: `fsync puts: ${manyWriters} writers vs 1 writer (group commit)`, value: round(gc, 2), unit: '×', goal: '≥ 10×', met: tiny ? undefined : gc >= 10 })
      ctx.headline({ metric: `fsync puts, ${manyWriters} writers`, value: round(fsyncMany.causeway.median, 0), unit: 'ops/s' })
      const rawGc = fsyncMany.raw.median / fsyncOne.raw.median
      ctx.note(`Raw classic-level with sync:true scales ${round(rawGc, 1)}× from 1 to ${manyWriters} writers (one fsync per put, parallel only through libuv's thread pool); Causeway scales ${round(gc, 1)}×.`)
    }

    if (tiny) return

    // ---------------------------------------------------------------- sessions, value sizes, shards
    const sessionsList = ctx.mode === 'full' ? [1, 4, 16, 64, 256] : [1, 64]
    const sizeList = ctx.mode === 'full' ? [1, 16, 256, 1024, 4096, 16384] : [16, 4096]
    const shardList = ctx.mode === 'full' ? [1, 2, 4, 8] : [1, 4]
    const mdur = ctx.mode === 'full' ? durationMs : Math.round(durationMs / 2)
    const mreps = ctx.mode === 'full' ? reps : 1
    if (ctx.mode === 'quick') ctx.note('quick mode: the sessions, value-size and shard sweeps run a subset with one repetition each; `npm run bench -- --only kv-micro` runs all of them.')

    const sessSeries: Array<[number, number]> = []
    const sessRaw: Array<[number, number]> = []
    const sessRows: Array<Array<string | number | null>> = []
    {
      const a = await site('relaxed')
      const b = await openRaw(dir('raw'), 'relaxed')
      try {
        for (const s of sessionsList) {
          const r = await compare(ctx, a, b, { workers: s, putFraction: 0.5, valueSize, keys, distribution: 'uniform' }, mdur, mreps)
          sessSeries.push([s, r.causeway.median])
          sessRaw.push([s, r.raw.median])
          sessRows.push([s, mmm(r.causeway), mmm(r.raw), round(r.ratio.median, 2)])
          tick(`sessions ${s}`)
        }
        const sizeRows: Array<Array<string | number | null>> = []
        const sizeC: Array<[number, number]> = []
        const sizeR: Array<[number, number]> = []
        for (const size of sizeList) {
          const r = await compare(ctx, a, b, { workers: 64, putFraction: 1, valueSize: size, keys, distribution: 'uniform' }, mdur, mreps)
          sizeC.push([size, r.causeway.median])
          sizeR.push([size, r.raw.median])
          sizeRows.push([size, mmm(r.causeway), mmm(r.raw), round(r.ratio.median, 2), round((r.causeway.median * size) / 1e6, 2)])
          tick(`value ${size} B`)
        }
        ctx.table({ id: 'sessions', title: 'Sessions (1:1 put:get, relaxed, 100 B)', columns: ['sessions', 'Causeway ops/s', 'raw ops/s', 'ratio'], rows: sessRows, conclusion: 'Throughput should grow with concurrency until the 2 cores saturate.' })
        ctx.table({ id: 'value-size', title: 'Value size (puts, 64 sessions, relaxed)', columns: ['value bytes', 'Causeway puts/s', 'raw puts/s', 'ratio', 'Causeway MB/s of values'], rows: sizeRows, conclusion: 'Per-put overhead dominates small values; large values converge to the storage engine\'s bandwidth.' })
        ctx.figure({
          id: 'sessions', kind: 'line', title: 'Throughput vs sessions (1:1 put:get, relaxed)', xLabel: 'concurrent sessions (log)', yLabel: 'operations / s', logX: true,
          series: [{ name: 'Causeway site', points: sessSeries }, { name: 'raw classic-level', points: sessRaw }],
          conclusion: 'Both curves should rise with concurrency and flatten when the CPU saturates; the gap between them is Causeway\'s overhead.',
          reproduce: 'npm run bench -- --only kv-micro',
        })
        ctx.figure({
          id: 'value-size', kind: 'line', title: 'Put throughput vs value size (64 sessions, relaxed)', xLabel: 'value bytes (log)', yLabel: 'puts / s (log)', logX: true, logY: true,
          series: [{ name: 'Causeway site', points: sizeC }, { name: 'raw classic-level', points: sizeR }],
          conclusion: 'The curves converge for large values, where moving bytes dominates over per-put metadata.',
          reproduce: 'npm run bench -- --only kv-micro',
        })
      } finally {
        await a.close()
        await b.close()
      }
    }

    const shardRows: Array<Array<string | number | null>> = []
    const shardRelaxed: Array<[number, number]> = []
    const shardFsync: Array<[number, number]> = []
    for (const sh of shardList) {
      const vals: Record<Durability, Summary> = {} as Record<Durability, Summary>
      for (const d of ['relaxed', 'fsync'] as Durability[]) {
        const a = await site(d, sh)
        try {
          const samples = await repeat(mreps, 1, async (rep) =>
            runWorkload(a, { workers: 64, putFraction: 1, valueSize, keys, distribution: 'uniform' }, rep < 0 ? 100 : mdur, 300 + rep),
          )
          vals[d] = summarize(samples)
        } catch (e) {
          ctx.skip(`shards=${sh} ${d}`, errMsg(e))
        } finally {
          await a.close()
        }
      }
      if (vals.relaxed) shardRelaxed.push([sh, vals.relaxed.median])
      if (vals.fsync) shardFsync.push([sh, vals.fsync.median])
      shardRows.push([sh, vals.relaxed ? mmm(vals.relaxed) : null, vals.fsync ? mmm(vals.fsync) : null])
      tick(`shards ${sh}`)
    }
    ctx.table({ id: 'shards', title: 'Puts/s vs shards per site (64 sessions, 100 B)', columns: ['shards', 'relaxed', 'fsync'], rows: shardRows, conclusion: 'More shards mean more LevelDB instances and independent group commits; on 2 cores the benefit is bounded by CPU.' })
    ctx.figure({
      id: 'shards', kind: 'line', title: 'Put throughput vs shards per site (64 sessions)', xLabel: 'shards', yLabel: 'puts / s',
      series: [{ name: 'relaxed', points: shardRelaxed }, { name: 'fsync', points: shardFsync }],
      conclusion: 'Durable throughput should grow with shards (one group commit per shard) until the disk or CPU saturates.',
      reproduce: 'npm run bench -- --only kv-micro',
    })
  },
}
