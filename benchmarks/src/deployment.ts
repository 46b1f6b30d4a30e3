/**
 * A multi-process Causeway deployment on loopback: one OS process per site (site-worker.ts),
 * talking libp2p. Every peer address points at a counting TCP proxy in front of the target site,
 * so the harness measures bytes on the wire; emulated latency uses the adapter's `latencyMs`.
 */
import path from 'node:path'
import { freePort, startDelayProxy, type DelayProxy } from './delay-proxy.js'
import { loadLibp2p } from './loaders.js'
import { startWorker, type Worker } from './workers.js'

export interface Deployment {
  ids: string[]
  workers: Map<string, Worker>
  /** Bytes that crossed the proxies (both directions) since the last reset. */
  bytes(): number
  resetBytes(): void
  close(): Promise<void>
}

let deployN = 0

export async function openDeployment(o: { ids: string[]; latencyMs: number; tmp: string; durability?: 'fsync' | 'relaxed'; orm?: boolean }): Promise<Deployment> {
  const { peerIdFromKeyFile } = await loadLibp2p()
  const n = deployN++
  const base = path.join(o.tmp, `deploy${n}`)
  const keys = new Map<string, string>()
  const peerIds = new Map<string, string>()
  const ports = new Map<string, number>()
  const proxies = new Map<string, DelayProxy>()
  const workers = new Map<string, Worker>()
  const close = async () => {
    await Promise.allSettled([...workers.values()].map((w) => w.stop()))
    await Promise.allSettled([...proxies.values()].map((p) => p.close()))
  }
  try {
    for (const id of o.ids) {
      const keyFile = path.join(base, `${id}.key`)
      const { mkdirSync } = await import('node:fs')
      mkdirSync(base, { recursive: true })
      keys.set(id, keyFile)
      peerIds.set(id, await peerIdFromKeyFile(keyFile))
      const port = await freePort()
      ports.set(id, port)
      proxies.set(id, await startDelayProxy({ targetPort: port, latencyMs: 0 }))
    }
    await Promise.all(
      o.ids.map(async (id) => {
        const w = await startWorker(`site ${id}`)
        workers.set(id, w)
      }),
    )
    await Promise.all(
      o.ids.map((id) =>
        workers.get(id)!.call('open', {
          siteId: id,
          dir: path.join(base, id),
          port: ports.get(id),
          keyFile: keys.get(id),
          latencyMs: o.latencyMs,
          durability: o.durability ?? 'relaxed',
          orm: o.orm ?? false,
          peers: o.ids
            .filter((p) => p !== id)
            .map((p) => ({ site: p, addrs: [`/ip4/127.0.0.1/tcp/${proxies.get(p)!.port}/p2p/${peerIds.get(p)}`] })),
        }, 60_000),
      ),
    )
    await Promise.all(o.ids.map((id) => workers.get(id)!.call('waitConnected', { peers: o.ids.filter((p) => p !== id), timeoutMs: 30_000 }, 40_000)))
  } catch (e) {
    await close()
    throw e
  }
  return {
    ids: o.ids,
    workers,
    bytes: () => [...proxies.values()].reduce((s, p) => s + p.bytesUp + p.bytesDown, 0),
    resetBytes: () => proxies.forEach((p) => p.resetCounters()),
    close,
  }
}
