import { MemoryLevel } from 'memory-level'
import { openSite, type OpenSiteOptions, type ShardDb, type Site, type StorageFactory } from 'causeway'
import { createSimNetwork, type SimAdapterOptions, type SimNetworkOptions } from '@causeway/sim'

/** Several sites on one simulated network; closes everything at the end of the test. */
export async function cluster(
  ids: string[],
  opts: { net?: SimNetworkOptions; site?: Partial<OpenSiteOptions>; peers?: Record<string, SimAdapterOptions['peers']> } = {},
) {
  const net = createSimNetwork(opts.net ?? {})
  const sites: Record<string, Site> = {}
  const open = async (id: string, extra: Partial<OpenSiteOptions> = {}) => {
    const peers = opts.peers?.[id]
    sites[id] = await openSite({ id, storage: 'memory', heartbeatMs: 50, network: net.adapter(id, peers ? { peers } : undefined), ...opts.site, ...extra })
    return sites[id]!
  }
  for (const id of ids) await open(id)
  return {
    net,
    sites,
    open,
    async close() {
      await Promise.allSettled(Object.values(sites).map((s) => s.close()))
      await net.close()
    },
  }
}

/** Poll until `fn` returns a truthy value, or fail after `timeoutMs`. Bounded: never hangs a test. */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A storage whose dbs outlive the site (reopens see the same data), and the dbs to inspect. */
export function keptStorage(): { storage: StorageFactory; dbs: ShardDb[] } {
  const dbs: ShardDb[] = []
  const storage = Object.assign(
    (i: number) => {
      if (!dbs[i]) dbs[i] = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
      return dbs[i]!
    },
    { supports: { persistent: true } },
  )
  return { storage, dbs }
}

/** Log entries held in these shard dbs. */
export const logKeys = async (dbs: ShardDb[]): Promise<number> => {
  let n = 0
  for (const db of dbs) n += (await db.keys({ gte: 'l!', lt: 'l"' }).all()).length
  return n
}
