import { MemoryLevel } from 'memory-level'
import { openSite, type NetworkAdapter, type OpenSiteOptions, type ShardDb, type Site } from 'causeway'
import { createSimNetwork, type SimAdapterOptions, type SimNetworkOptions } from '@causeway/sim'

/** Sites on one sim network whose shard dbs the test can read directly (memory-level). */
export async function scopedCluster(
  ids: string[],
  site: Partial<OpenSiteOptions>,
  opts: { net?: SimNetworkOptions; peers?: Record<string, SimAdapterOptions['peers']>; perSite?: Record<string, Partial<OpenSiteOptions>> } = {},
) {
  const net = createSimNetwork(opts.net ?? {})
  const dbs: Record<string, ShardDb[]> = {}
  const sites: Record<string, Site> = {}
  /** Every frame's bytes sent to a site, by receiver (what crossed the WAN towards it). */
  const wire: Record<string, Buffer[]> = {}
  const tap = (from: string, a: NetworkAdapter): NetworkAdapter =>
    new Proxy(a, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv) as unknown
        if (prop === 'send') {
          return (peer: string, bytes: Uint8Array) => {
            ;(wire[peer] ??= []).push(Buffer.from(bytes))
            ;(wire[`${from}>${peer}`] ??= []).push(Buffer.from(bytes))
            return (v as NetworkAdapter['send']).call(target, peer, bytes)
          }
        }
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v
      },
    })
  for (const id of ids) {
    dbs[id] = []
    const peers = opts.peers?.[id]
    sites[id] = await openSite({
      id,
      heartbeatMs: 30,
      network: tap(id, net.adapter(id, peers ? { peers } : undefined)),
      storage: () => {
        const db = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb
        dbs[id]!.push(db)
        return db
      },
      ...site,
      ...opts.perSite?.[id],
    })
  }
  /** Every (key, value) of every shard db of a site, raw. */
  const contents = async (id: string): Promise<Array<[string, Uint8Array]>> => {
    const out: Array<[string, Uint8Array]> = []
    for (const db of dbs[id]!) for await (const [k, v] of db.iterator()) out.push([k as string, v as Uint8Array])
    return out
  }
  /** Does any stored key or value of the site contain one of these strings (as UTF-8 bytes)? */
  const leaks = async (id: string, needles: string[]): Promise<string[]> => {
    const found: string[] = []
    for (const [k, v] of await contents(id)) {
      const text = k + '\u0000' + Buffer.from(v).toString('latin1')
      for (const n of needles) if (text.includes(n) || Buffer.from(v).includes(Buffer.from(n))) found.push(`${n} in ${k}`)
    }
    return found
  }
  /** Did any frame sent to `to` contain one of these strings? */
  const sentTo = (to: string, needles: string[]): string[] => {
    const all = Buffer.concat(wire[to] ?? [])
    return needles.filter((n) => all.includes(Buffer.from(n)))
  }
  return {
    net,
    wire,
    sentTo,
    sites,
    dbs,
    contents,
    leaks,
    async close() {
      await Promise.allSettled(Object.values(sites).map((s) => s.close()))
      await net.close()
    },
  }
}
