/** The control-plane workload through the ORM, shared by the in-process and multi-process modes. */
import type { Site } from '@causeway/core'
import { loadOrm, type ComputeDb, type OrmDatabase } from './loaders.js'

export async function openOrm(site: Site, models: unknown[]): Promise<OrmDatabase> {
  const orm = await loadOrm()
  return orm.openDatabase({ backend: 'causeway', site, models })
}

/** createInstances with the boot sequence; per-call latencies (from its return value, or timed here). */
export async function runCreateInstances(cdb: ComputeDb, db: OrmDatabase, n: number, concurrency: number, prefix: string): Promise<number[]> {
  const calls: number[] = []
  const r = await cdb.createInstances(wrapTimed(db, calls), n, { concurrency, boot: true, prefix })
  return Array.isArray(r) && r.length === n && r.every((x) => typeof x === 'number') ? (r as number[]) : calls
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

