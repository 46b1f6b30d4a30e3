/**
 * A Causeway site in its own OS process, driven by the benchmark harness over IPC.
 * Commands: open, waitConnected, write, watch, watchResult, cp (control-plane share), status, close.
 * Times are absolute (performance.timeOrigin + performance.now()) so they compare across processes.
 */
import type { OpenSiteOptions, Session, Site } from '@causeway/core'
import { loadComputeDb, loadLibp2p, loadOpenSite, loadOrm, type OrmDatabase } from './loaders.js'
import { errMsg } from './harness.js'
import { openOrm, runCreateInstances } from './orm-work.js'

const now = () => performance.timeOrigin + performance.now()

let site: Site | undefined
let network: { stop(): Promise<void> } | undefined
let db: OrmDatabase | undefined
const watches = new Map<string, { times: Float64Array; seen: number; n: number; done: Promise<void>; stop(): void; lastAt: number }>()

type Msg = { id: number; cmd: string; [k: string]: unknown }

async function handle(m: Msg): Promise<unknown> {
  switch (m.cmd) {
    case 'open': {
      const { libp2pNetwork } = await loadLibp2p()
      const openSite = await loadOpenSite()
      const net = await libp2pNetwork({
        listen: [`/ip4/127.0.0.1/tcp/${m['port'] as number}`],
        privateKey: m['keyFile'] as string,
        peers: m['peers'] as Array<{ site: string; addrs: string[] }>,
        ...(m['latencyMs'] ? { latencyMs: m['latencyMs'] as number } : {}),
      })
      network = net
      let conflicts: OpenSiteOptions['conflicts'] | undefined
      if (m['orm']) {
        const orm = await loadOrm()
        const cdb = await loadComputeDb()
        conflicts = orm.ormConflicts?.(cdb.models)
      }
      site = await openSite({
        ...(conflicts ? { conflicts } : {}),
        id: m['siteId'] as string,
        dir: m['dir'] as string,
        network: net,
        durability: (m['durability'] as 'fsync' | 'relaxed') ?? 'relaxed',
      })
      return { peerId: net.peerId, addrs: net.addrs }
    }
    case 'waitConnected': {
      const want = m['peers'] as string[]
      const deadline = performance.now() + ((m['timeoutMs'] as number) ?? 20_000)
      for (;;) {
        const st = site!.status()
        const ok = want.every((p) => st.peers.some((x) => x.id === p && x.state === 'connected'))
        if (ok) return st
        if (performance.now() > deadline) throw new Error(`peers not connected in time: ${JSON.stringify(st.peers)}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    case 'watch': {
      const prefix = m['prefix'] as string
      const n = m['n'] as number
      const times = new Float64Array(n)
      let resolve!: () => void
      const done = new Promise<void>((r) => (resolve = r))
      const w = { times, seen: 0, n, done, stop: () => {}, lastAt: 0 }
      w.stop = site!.onApplied((keys, origin) => {
        if (origin === site!.id) return
        const t = now()
        for (const k of keys) {
          if (!k.startsWith(prefix)) continue
          const i = Number(k.slice(prefix.length))
          if (i >= 0 && i < n && times[i] === 0) {
            times[i] = t
            w.seen++
            w.lastAt = t
          }
        }
        if (w.seen >= n) resolve()
      })
      if (n === 0) resolve()
      watches.set(prefix, w)
      return { ok: true }
    }
    case 'watchResult': {
      const w = watches.get(m['prefix'] as string)!
      const timeout = (m['timeoutMs'] as number) ?? 60_000
      await Promise.race([w.done, new Promise((r) => setTimeout(r, timeout))])
      w.stop()
      watches.delete(m['prefix'] as string)
      return { seen: w.seen, n: w.n, lastAt: w.lastAt, times: m['withTimes'] ? Array.from(w.times) : undefined }
    }
    case 'write': {
      const prefix = m['prefix'] as string
      const n = m['n'] as number
      const conc = (m['concurrency'] as number) ?? 64
      const rate = m['rate'] as number | undefined
      const valueSize = (m['valueSize'] as number) ?? 16
      const value = 'x'.repeat(valueSize)
      const sessions: Session[] = Array.from({ length: conc }, () => site!.session())
      const issued = new Float64Array(n)
      const t0 = now()
      if (rate) {
        let i = 0
        const start = performance.now()
        const pending: Promise<unknown>[] = []
        while (i < n) {
          const due = Math.min(n, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
          while (i < due) {
            issued[i] = now()
            pending.push(sessions[i % conc]!.put(`${prefix}${i}`, value))
            i++
          }
          if (i < n) await new Promise((r) => setTimeout(r, 1))
        }
        await Promise.all(pending)
      } else {
        let next = 0
        await Promise.all(
          sessions.map(async (s) => {
            while (next < n) {
              const i = next++
              issued[i] = now()
              await s.put(`${prefix}${i}`, value)
            }
          }),
        )
      }
      return { startedAt: t0, endedAt: now(), issued: m['withTimes'] ? Array.from(issued) : undefined }
    }
    case 'cp': {
      // control plane: this process's share of the "boot a VM" workload through the ORM
      const cdb = await loadComputeDb()
      db ??= await openOrm(site!, cdb.models)
      const t0 = now()
      const calls = await runCreateInstances(cdb, db, m['n'] as number, (m['concurrency'] as number) ?? 8, m['prefix'] as string)
      return { startedAt: t0, endedAt: now(), samples: calls }
    }
    case 'status':
      return site!.status()
    case 'idle':
      await site!.idle((m['timeoutMs'] as number) ?? 60_000)
      return { ok: true }
    case 'close': {
      await db?.close().catch(() => undefined)
      await site?.close()
      await network?.stop().catch(() => undefined)
      site = undefined
      return { ok: true }
    }
    default:
      throw new Error(`unknown command ${m.cmd}`)
  }
}

if (process.send && process.env['CAUSEWAY_BENCH_WORKER'] === '1') {
  process.on('message', (m: Msg) => {
    handle(m).then(
      (result) => process.send!({ id: m.id, ok: true, result }),
      (e) => process.send!({ id: m.id, ok: false, error: errMsg(e) }),
    )
  })
  process.on('disconnect', () => process.exit(0))
  process.on('SIGTERM', () => {
    void (async () => {
      try {
        await site?.close()
        await network?.stop()
      } finally {
        process.exit(0)
      }
    })()
  })
  process.send({ id: 0, ok: true, result: 'ready' })
}
