/**
 * A Causeway site in its own OS process, driven by the benchmark harness over IPC.
 * Commands: open, waitConnected, write, watch, watchResult, cp (control-plane share), status, close.
 * Times are absolute (performance.timeOrigin + performance.now()) so they compare across processes.
 */
import type { Session, Site } from '@causeway/core'
import { loadComputeDb, loadLibp2p, loadOpenSite, loadOrm, type OrmDatabase } from './loaders.js'
import { errMsg, latencies } from './harness.js'

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
      site = await openSite({
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
      const orm = await loadOrm()
      const cdb = await loadComputeDb()
      db ??= await orm.openDatabase({ backend: 'causeway', site: site!, models: cdb.models })
      const calls: number[] = []
      const timed = wrapTimed(db, calls)
      const t0 = now()
      await cdb.createInstances(timed, m['n'] as number, { concurrency: (m['concurrency'] as number) ?? 32, site: site!.id, prefix: m['prefix'] as string })
      return { startedAt: t0, endedAt: now(), calls: latencies(calls), samples: calls.length > 4000 ? calls.filter((_, i) => i % Math.ceil(calls.length / 4000) === 0) : calls }
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

/** Wrap an ORM database so that every repository call (and transaction) records its latency. */
export function wrapTimed(db: OrmDatabase, sink: number[]): OrmDatabase {
  const wrapRepo = (repo: Record<string, unknown>) =>
    new Proxy(repo, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv)
        if (typeof v !== 'function') return v
        return (...args: unknown[]) => {
          const t = performance.now()
          const r = (v as (...a: unknown[]) => unknown).apply(target, args)
          if (r && typeof (r as Promise<unknown>).then === 'function') {
            return (r as Promise<unknown>).then((x) => {
              sink.push(performance.now() - t)
              return x
            })
          }
          return r
        }
      },
    })
  const wrapDb = (d: OrmDatabase): OrmDatabase =>
    new Proxy(d, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv)
        if (prop === 'repository') return (model: unknown) => wrapRepo((v as OrmDatabase['repository']).call(target, model) as Record<string, unknown>)
        if (prop === 'transaction') {
          return async (fn: (tx: OrmDatabase) => Promise<unknown>) => {
            const t = performance.now()
            // calls inside the transaction are part of this one call: not recorded separately
            const r = await (v as OrmDatabase['transaction']).call(target, (tx: OrmDatabase) => fn(tx))
            sink.push(performance.now() - t)
            return r
          }
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  return wrapDb(db)
}

if (process.send) {
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
