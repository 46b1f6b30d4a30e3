// Two Causeway sites on the in-process network; the unchanged level module runs on each.
import { createSite } from '@causeway/core'
import { createSimNetwork } from '@causeway/sim'
import { CausewayLevel } from '@causeway/level'
import { orderBook } from './orders.mjs'

export async function demo({ latencyMs = 30, log = () => {} } = {}) {
  const net = createSimNetwork({ latencyMs, jitterMs: 5, seed: 1 })
  const paris = await createSite({ id: 'paris', storage: 'memory', heartbeatMs: 50, network: net.adapter('paris') })
  const lyon = await createSite({ id: 'lyon', storage: 'memory', heartbeatMs: 50, network: net.adapter('lyon') })
  try {
    const atParis = orderBook(new CausewayLevel({ site: paris, prefix: 'shop/' }))
    const atLyon = orderBook(new CausewayLevel({ site: lyon, prefix: 'shop/' }))
    await atParis.place('o-001', { customer: 'ada', amount: 30 })
    await atParis.place('o-002', { customer: 'bob', amount: 12 })
    await atLyon.place('o-003', { customer: 'ada', amount: 5 }) // written at the other site
    log('before replication, lyon sees ada ->', await atLyon.idsOf('ada'))
    await net.settle()
    const result = {
      paris: { ada: await atParis.idsOf('ada'), total: await atParis.total('o-000', 'o-999') },
      lyon: { ada: await atLyon.idsOf('ada'), total: await atLyon.total('o-000', 'o-999') },
    }
    log('after replication:', JSON.stringify(result))
    return result
  } finally {
    await Promise.allSettled([paris.close(), lyon.close()])
    await net.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await demo({ log: console.log })
}
