import { libp2pNetwork, peerIdFromKeyFile } from '../src/index.js'
import type { Libp2pNetwork } from '../src/index.js'
import { networkCompliance } from '../../../test/compliance/network.js'
import { Scratch } from './helpers.js'

// The shared NetworkAdapter contract over real libp2p nodes on loopback. Each site keeps its key
// file across restarts (same PeerId); a site dials the peers whose adapters exist when it is
// created, so a restarted site finds the others where they are.
networkCompliance('libp2p', async ({ highWaterBytes, maxFrameBytes }) => {
  const scratch = new Scratch()
  await scratch.init()
  const live = new Map<string, Libp2pNetwork>()
  const all: Libp2pNetwork[] = []
  return {
    async adapter(site, peers) {
      const resolved = []
      for (const p of peers) {
        const other = live.get(p.site)
        const peerId = await peerIdFromKeyFile(scratch.path(`${p.site}.key`))
        resolved.push({ site: p.site, peerId, ...(other === undefined ? {} : { addrs: other.addrs }), ...(p.send === undefined ? {} : { send: p.send }), ...(p.receive === undefined ? {} : { receive: p.receive }) })
      }
      const net = await libp2pNetwork({
        privateKey: scratch.path(`${site}.key`),
        peers: resolved,
        dialIntervalMs: 50,
        maxDialIntervalMs: 200,
        ...(highWaterBytes === undefined ? {} : { highWaterBytes }),
        ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }),
      })
      live.set(site, net)
      all.push(net)
      return net
    },
    async close() {
      await Promise.all(all.map((n) => n.stop()))
      await scratch.cleanup()
    },
  }
})
