// Profiling driver for the local write path (issue #8): the kv-micro put comparisons and the ORM
// create-instances call, side by side with their baselines in one process run. Not a benchmark of
// record (see benchmarks/); run it under `node --cpu-prof` to see where the time goes.
//   node scripts/profile-write-path.mjs [kv|orm|all] [durationMs]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import { pack } from 'msgpackr'
import { openSite } from 'causeway'

const what = process.argv[2] ?? 'all'
const durationMs = Number(process.argv[3] ?? 1500)
const tmp = mkdtempSync(path.join(tmpdir(), 'cw-prof-'))
let n = 0
const dir = (t) => path.join(tmp, `${t}-${n++}`)
const value = new Uint8Array(100).map((_, i) => (i * 37) & 255)
const key = (i) => `user${String(i).padStart(8, '0')}`

async function loop(workers, ms, op) {
  let ops = 0
  const end = performance.now() + ms
  let seed = 1
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    let x = w * 7919 + seed
    while (performance.now() < end) {
      x = (x * 1103515245 + 12345) & 0x7fffffff
      await op(w, key(x % 10_000))
      ops++
    }
  }))
  return (ops * 1000) / ms
}

async function kv() {
  for (const [d, workers] of [['relaxed', 1], ['relaxed', 64], ['fsync', 1], ['fsync', 64]]) {
    const ratios = []
    const cws = []
    for (let rep = 0; rep < 3; rep++) {
      const site = await openSite({ id: 'bench', dir: dir('site'), durability: d, shards: 4 })
      const sessions = Array.from({ length: workers }, () => site.session())
      const raw = new ClassicLevel(dir('raw'), { valueEncoding: 'view' })
      await raw.open()
      const sync = d === 'fsync'
      const ms = d === 'fsync' ? durationMs * 1.5 : durationMs
      const a = await loop(workers, ms, (w, k) => sessions[w].put(k, value))
      const b = await loop(workers, ms, (_w, k) => raw.put(k, pack(value), { sync }))
      await site.close()
      await raw.close()
      ratios.push(a / b)
      cws.push(a)
    }
    const med = (xs) => [...xs].sort((p, q) => p - q)[1]
    console.log(`put ${d} x${workers}: causeway ${med(cws).toFixed(0)}/s, ratio vs raw ${med(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(' ')})`)
    if (d === 'fsync') fsyncMed[workers] = med(cws)
  }
  console.log(`fsync 64 vs 1 writer: ${(fsyncMed[64] / fsyncMed[1]).toFixed(1)}x`)
}
const fsyncMed = {}

async function orm() {
  const ormMod = await import('@causeway/orm')
  const cdb = await import('@causeway/example-compute-db')
  const models = cdb.computeModels
  const N = Number(process.env.ORM_N ?? 300)
  const res = { sqlite: [], causeway: [] }
  const systems = what === 'orm-causeway' ? ['causeway'] : ['sqlite', 'causeway']
  for (let rep = 0; rep < 3; rep++) {
    for (const sys of systems) {
      let db, close
      if (sys === 'sqlite') {
        db = await ormMod.openDatabase({ backend: 'sqlite', file: path.join(tmp, `s-${rep}.db`), models })
        close = () => db.close()
      } else {
        const site = await openSite({ id: 'svc', dir: dir('svc'), conflicts: ormMod.ormConflicts?.(models) })
        db = await ormMod.openDatabase({ backend: 'causeway', site, models })
        close = async () => { await db.close(); await site.close() }
      }
      const calls = await cdb.createInstances(db, N, { concurrency: 16, prefix: `r${rep}` })
      await close()
      const s = [...calls].sort((a, b) => a - b)
      res[sys].push(s[Math.floor(s.length / 2)])
    }
  }
  const med = (xs) => [...xs].sort((p, q) => p - q)[1]
  if (systems.length === 1) return console.log(`orm p50 causeway ${med(res.causeway).toFixed(2)} ms`)
  console.log(`orm p50 sqlite ${med(res.sqlite).toFixed(2)} ms, causeway ${med(res.causeway).toFixed(2)} ms, ratio ${(med(res.causeway) / med(res.sqlite)).toFixed(2)} (per rep: ${res.causeway.map((c, i) => (c / res.sqlite[i]).toFixed(2)).join(' ')})`)
}

// Causeway puts alone (for a clean profile): `node --cpu-prof scripts/profile-write-path.mjs put <ms> <writers> <durability>`
async function putOnly() {
  const workers = Number(process.argv[4] ?? 1)
  const d = process.argv[5] ?? 'relaxed'
  const site = await openSite({ id: 'bench', dir: dir('site'), durability: d, shards: 4 })
  const sessions = Array.from({ length: workers }, () => site.session())
  const c0 = process.cpuUsage()
  const a = await loop(workers, durationMs, (w, k) => sessions[w].put(k, value))
  const c = process.cpuUsage(c0)
  await site.close()
  console.log(`put ${d} x${workers}: causeway ${a.toFixed(0)}/s, cpu ${((c.user + c.system) / ((a * durationMs) / 1000)).toFixed(1)} us/op`)
}

try {
  if (what === 'put') await putOnly()
  if (what === 'kv' || what === 'all') await kv()
  if (what === 'orm' || what === 'orm-causeway' || what === 'all') await orm()
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
