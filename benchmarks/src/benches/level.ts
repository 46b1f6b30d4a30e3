/**
 * level: the same abstract-level workload on a CausewayLevel (one site on real LevelDB shards) and
 * on a plain classic-level database — put, batch, get, range reads and a full scan — as ratios of
 * repetitions interleaved in one run. Both sides are driven through the abstract-level API only.
 */
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import type { AbstractLevel } from 'abstract-level'
import { CausewayLevel } from '@causeway/level'
import { SkipError, repeat, rng, round, summarize, throughput, type Benchmark, type Cell } from '../harness.js'
import { loadOpenSite, type OpenSite } from '../loaders.js'

type Db = AbstractLevel<string | Uint8Array, string, string>
const pad = (i: number) => `user${String(i).padStart(8, '0')}`

interface Op {
  name: string
  workers: number
  /** Entries moved per call (for entries/s). */
  perCall: number
  run(db: Db, r: () => number, keys: number): Promise<unknown>
}

const value = 'v'.repeat(100)
const ops: Op[] = [
  { name: 'put', workers: 1, perCall: 1, run: (db, r, keys) => db.put(pad(Math.floor(r() * keys)), value) },
  { name: 'put', workers: 16, perCall: 1, run: (db, r, keys) => db.put(pad(Math.floor(r() * keys)), value) },
  {
    name: 'batch of 100 puts',
    workers: 1,
    perCall: 100,
    run: (db, r, keys) => {
      const base = Math.floor(r() * (keys - 100))
      return db.batch(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: pad(base + i), value })))
    },
  },
  { name: 'get', workers: 1, perCall: 1, run: (db, r, keys) => db.get(pad(Math.floor(r() * keys))) },
  { name: 'get', workers: 16, perCall: 1, run: (db, r, keys) => db.get(pad(Math.floor(r() * keys))) },
  { name: 'iterator, 100 entries from a random key', workers: 1, perCall: 100, run: (db, r, keys) => db.iterator({ gte: pad(Math.floor(r() * (keys - 100))), limit: 100 }).all() },
  { name: 'iterator, 10 entries reverse', workers: 1, perCall: 10, run: (db, r, keys) => db.iterator({ lte: pad(Math.floor(r() * keys)), limit: 10, reverse: true }).all() },
  {
    name: 'full scan (for await), entries/s',
    workers: 1,
    perCall: 0, // counted inside
    run: async (db) => {
      let n = 0
      for await (const _ of db.iterator()) n++
      return n
    },
  },
]

export const level: Benchmark = {
  name: 'level',
  description:
    'The same abstract-level workload on `CausewayLevel` (@causeway/level over one site, 4 LevelDB shards, relaxed durability) and on one `classic-level` database (no sync): put, batch, get, range reads, a full scan; 100-byte utf8 values, keys `user%08d`. Closed loop, ops/s (entries/s for reads of many entries); ratios per repetition, interleaved, same run.',
  quick: true,
  async run(ctx) {
    let openSite: OpenSite
    try {
      openSite = await loadOpenSite()
    } catch (e) {
      throw e instanceof SkipError ? new SkipError(`${e.message} (classic-level alone is not a comparison)`) : e
    }
    const tiny = ctx.mode === 'tiny'
    const durationMs = ctx.pick({ tiny: 50, quick: 300, full: 1500 })
    const reps = ctx.reps({ tiny: 1, quick: 2, full: 5 })
    const keys = ctx.pick({ tiny: 300, quick: 5_000, full: 50_000 })
    ctx.param('durationMsPerRep', durationMs)
    ctx.param('repetitions', reps)
    ctx.param('keySpace', keys)
    ctx.param('valueBytes', 100)

    const site = await openSite({ id: 'bench', durability: 'relaxed', shards: 4, ...(tiny ? { storage: 'memory' as const } : { dir: path.join(ctx.tmp, 'site') }) })
    const cw = new CausewayLevel({ site, prefix: 'bench/' }) as unknown as Db
    const raw = new ClassicLevel<string, string>(path.join(ctx.tmp, 'raw')) as unknown as Db
    try {
      await Promise.all([cw.open(), raw.open()])
      // Same prefill on both: every key present, so gets hit and ranges are full.
      for (const db of [cw, raw]) {
        for (let i = 0; i < keys; i += 500) {
          await db.batch(Array.from({ length: Math.min(500, keys - i) }, (_, j) => ({ type: 'put' as const, key: pad(i + j), value })))
        }
      }
      const rows: Cell[][] = []
      let step = 0
      for (const op of ops) {
        ctx.progress(step++, ops.length, `${op.name} ×${op.workers}`)
        const a: number[] = []
        const b: number[] = []
        const ratio: number[] = []
        const measure = async (db: Db, seed: number): Promise<number> => {
          const rs = Array.from({ length: op.workers }, (_, w) => rng(seed * 31 + w))
          let entries = 0
          const res = await throughput(op.workers, durationMs, async (w) => {
            const got = await op.run(db, rs[w]!, keys)
            entries += op.perCall === 0 ? (got as number) : op.perCall
          })
          return (entries * 1000) / res.ms
        }
        await repeat(reps, 1, async (rep) => {
          const seed = 7 + Math.max(rep, 0)
          const x = await measure(cw, seed)
          const y = await measure(raw, seed)
          if (rep >= 0) {
            a.push(x)
            b.push(y)
            ratio.push(x / y)
          }
          if (ctx.signal.aborted) throw ctx.signal.reason
        })
        const sa = summarize(a)
        const sb = summarize(b)
        const sr = summarize(ratio)
        rows.push([op.name, op.workers, round(sa.median, 0), round(sb.median, 0), round(sr.median, 3), `${round(sr.min, 3)}–${round(sr.max, 3)}`])
        if (op.name === 'put' && op.workers === 16) ctx.headline({ metric: 'CausewayLevel/classic-level put ratio (16 writers)', value: round(sr.median, 3), unit: '×' })
        if (op.name === 'get' && op.workers === 16) ctx.headline({ metric: 'CausewayLevel/classic-level get ratio (16 readers)', value: round(sr.median, 3), unit: '×' })
        if (op.name.startsWith('iterator, 100')) ctx.headline({ metric: 'CausewayLevel/classic-level range-read ratio (100 entries)', value: round(sr.median, 3), unit: '×' })
      }
      ctx.table({
        id: 'level',
        title: 'CausewayLevel vs classic-level through the abstract-level API (per second, median of repetitions)',
        columns: ['operation', 'concurrency', 'CausewayLevel', 'classic-level', 'ratio (median)', 'ratio min–max'],
        rows,
        conclusion:
          'Writes pay for the site (versions, the replication log, group commit); range reads pay for the k-way merge across shards, a liveness check per key and one getMany per chunk (causal values), so ratios there are lower than for point gets.',
      })
    } finally {
      await Promise.allSettled([cw.close(), raw.close()])
      await site.close()
    }
  },
}
