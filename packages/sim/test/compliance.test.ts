import { createSimNetwork } from '../src/index.js'
import type { SimAdapter } from '../src/index.js'
import { networkCompliance } from '../../../test/compliance/network.js'

// The shared NetworkAdapter contract over the in-process network (real timers, zero latency).
networkCompliance('sim', async ({ highWaterBytes }) => {
  const net = createSimNetwork(highWaterBytes === undefined ? {} : { highWaterBytes })
  const adapters: SimAdapter[] = []
  return {
    async adapter(site, peers) {
      const a = net.adapter(site, { peers })
      adapters.push(a)
      return a
    },
    async close() {
      for (const a of adapters) await a.stop()
      await net.close()
    },
  }
})
