// A plain level-ecosystem module: it knows abstract-level (sublevels, batch) and level-read-stream,
// nothing about Causeway. The same code runs on memory-level, classic-level or a CausewayLevel.
import { EntryStream } from 'level-read-stream'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export function orderBook(db) {
  const orders = db.sublevel('orders', { valueEncoding: 'json' })
  const byCustomer = db.sublevel('by-customer') // index: `<customer>!<orderId>` -> ''

  return {
    /** An order and its index entry in one atomic batch (both or neither, at every replica). */
    async place(id, order) {
      await db.batch([
        { type: 'put', sublevel: orders, key: id, value: order },
        { type: 'put', sublevel: byCustomer, key: `${order.customer}!${id}`, value: '' },
      ])
    },

    /** Order ids of one customer, in id order, through the index (a key range). */
    async idsOf(customer) {
      const ids = []
      for await (const key of byCustomer.keys({ gt: `${customer}!`, lt: `${customer}!\xff` })) ids.push(key.slice(customer.length + 1))
      return ids
    },

    /** Streams orders with ids in [from, to) through a Node.js stream pipeline; returns the total. */
    async total(from, to) {
      let sum = 0
      await pipeline(
        new EntryStream(orders, { gte: from, lt: to }),
        new Writable({
          objectMode: true,
          write({ value }, _enc, next) {
            sum += value.amount
            next()
          },
        }),
      )
      return sum
    },
  }
}
