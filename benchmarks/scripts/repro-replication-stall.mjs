// Minimal reproduction of a replication stall seen by the benchmarks (peers, replication-*):
// two sites on @causeway/sim (0 ms), LevelDB storage, 4 shards, relaxed durability, 64 sessions
// writing 2,000 distinct keys at site a. At the time of writing, b stops applying with
// pendingIn ≈ 400 and a keeps pendingOut ≈ 150 (1 shard, 8 sessions or memory storage: fine).
//   npx tsc -b benchmarks && node benchmarks/scripts/repro-replication-stall.mjs [sessions] [writes] [level|memory] [shards]
import os from 'node:os'
import path from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { openSimCluster, waitApplied } from '../dist/cluster.js'

const [conc = 64, N = 2000, storage = 'level', shards = 4] = process.argv.slice(2).map((a, i) => (i === 2 ? a : Number(a)))
const tmp = mkdtempSync(path.join(os.tmpdir(), 'causeway-stall-'))
const c = await openSimCluster({ ids: ['a', 'b'], latencyMs: 0, tmp, storage, shards })
const [a, b] = c.sites
const w = waitApplied(b, (k) => k.startsWith('x-'), N)
const sessions = Array.from({ length: conc }, () => a.session())
let next = 0
await Promise.all(sessions.map(async (s) => { while (next < N) { const i = next++; await s.put(`x-${i}`, { i }) } }))
const r = await Promise.race([w.done.then(() => 'converged'), new Promise((res) => setTimeout(() => res('STALLED (8 s)'), 8000))])
console.log(JSON.stringify({ sessions: conc, writes: N, storage, shards, result: r, appliedAtB: w.seen(), bPendingIn: b.status().pendingIn, aPendingOut: a.status().peers[0]?.pendingOut }))
await c.close()
rmSync(tmp, { recursive: true, force: true })
process.exit(r === 'converged' ? 0 : 1)
