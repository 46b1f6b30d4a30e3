/**
 * OrbitDB adapter for the peers benchmark. OrbitDB lives outside the workspace (see
 * benchmarks/scripts/orbitdb.sh for why); we load the entry module that script generates, or
 * BENCH_ORBITDB_ENTRY. Two OrbitDB peers, each with its own libp2p node (TCP + Noise + Yamux +
 * gossipsub) and Helia (bitswap), in this process, connected over loopback.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { SkipError, errMsg, withTimeout } from './harness.js'
import { repoRoot } from './report.js'

type Any = any // eslint-disable-line @typescript-eslint/no-explicit-any

export const ORBITDB_INSTALL = 'bash benchmarks/scripts/orbitdb.sh'

export interface OrbitPair {
  watch(prefix: string, n: number): Promise<void>
  write(prefix: string, n: number, conc: number): Promise<void>
  waitVisible(prefix: string, n: number, timeoutMs: number): Promise<void>
  close(): Promise<void>
}

function polyfill(): void {
  const P = Promise as Any
  if (typeof P.withResolvers !== 'function') {
    P.withResolvers = function <T>() {
      let resolve!: (v: T) => void
      let reject!: (e: unknown) => void
      const promise = new Promise<T>((a, b) => {
        resolve = a
        reject = b
      })
      return { promise, resolve, reject }
    }
  }
}

export async function loadOrbit(): Promise<{ version: string; openPair(dir: string): Promise<OrbitPair> }> {
  const entry = process.env['BENCH_ORBITDB_ENTRY'] ?? path.join(repoRoot, 'benchmarks', '.peers', 'orbitdb', 'entry.mjs')
  if (!existsSync(entry)) {
    throw new SkipError(
      `OrbitDB is not installed (${path.relative(repoRoot, entry)} missing). Install it with \`${ORBITDB_INSTALL}\`: @orbitdb/core 3.0.2 (4.x needs Node >= 22) with helia 5 and libp2p 2, ~400 MB / ~980 packages, kept out of the workspace; its helia → @libp2p/webrtc → node-datachannel install script needs a binary download, so it is installed with --ignore-scripts and Helia is assembled without WebRTC`,
    )
  }
  polyfill()
  let M: Any
  try {
    M = await import(pathToFileURL(entry).href)
  } catch (e) {
    throw new SkipError(`OrbitDB failed to load from ${entry}: ${errMsg(e)}`)
  }
  const version: string = M.version

  async function node(dir: string) {
    const libp2p = await M.createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [M.tcp()],
      connectionEncrypters: [M.noise()],
      streamMuxers: [M.yamux()],
      services: { identify: M.identify(), pubsub: M.gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false }) },
    })
    const helia = new M.Helia({
      libp2p,
      datastore: new M.MemoryDatastore(),
      blockstore: new M.MemoryBlockstore(),
      blockBrokers: [M.bitswap()],
      routers: [M.libp2pRouting(libp2p)],
      metrics: undefined,
    })
    await helia.start()
    const orbitdb = await M.createOrbitDB({ ipfs: helia, directory: path.join(dir, 'orbitdb') })
    return { libp2p, helia, orbitdb }
  }

  return {
    version,
    async openPair(dir: string): Promise<OrbitPair> {
      const A = await node(path.join(dir, 'A'))
      const B = await node(path.join(dir, 'B'))
      const stopAll = async () => {
        for (const x of [A, B]) {
          await x.orbitdb.stop().catch(() => undefined)
          await x.helia.stop().catch(() => undefined)
        }
      }
      let dbA: Any
      let dbB: Any
      try {
        await B.libp2p.dial(A.libp2p.getMultiaddrs()[0])
        dbA = await A.orbitdb.open('causeway-bench', { type: 'keyvalue', AccessController: M.IPFSAccessController({ write: ['*'] }) })
        dbB = await withTimeout(B.orbitdb.open(dbA.address), 30_000, 'OrbitDB open at B')
      } catch (e) {
        await stopAll()
        throw e
      }
      const watches = new Map<string, { seen: Set<string>; n: number; done: Promise<void>; resolve(): void }>()
      dbB.events.on('update', (e: Any) => {
        const key: string | undefined = e?.payload?.key
        if (!key) return
        for (const [prefix, w] of watches) {
          if (key.startsWith(prefix)) {
            w.seen.add(key)
            if (w.seen.size >= w.n) w.resolve()
          }
        }
      })
      return {
        async watch(prefix, n) {
          let resolve!: () => void
          const done = new Promise<void>((r) => (resolve = r))
          watches.set(prefix, { seen: new Set(), n, done, resolve })
        },
        async write(prefix, n, conc) {
          let next = 0
          await Promise.all(
            Array.from({ length: Math.min(conc, n) }, async () => {
              while (next < n) {
                const i = next++
                await dbA.put(`${prefix}${i}`, { i, name: `vm-${i}`, state: 'building', pad: 'p'.repeat(48) })
              }
            }),
          )
        },
        async waitVisible(prefix, n, timeoutMs) {
          const w = watches.get(prefix)!
          try {
            await withTimeout(w.done, timeoutMs, () => `OrbitDB: ${w.seen.size}/${n} visible at B`)
          } finally {
            watches.delete(prefix)
          }
        },
        async close() {
          await dbA?.close().catch(() => undefined)
          await dbB?.close().catch(() => undefined)
          await stopAll()
        },
      }
    },
  }
}
