import { describe, expect, it } from 'vitest'
import { MemoryLevel } from 'memory-level'
// @ts-expect-error plain JS example modules, no declarations
import { orderBook } from '../orders.mjs'
// @ts-expect-error plain JS example modules, no declarations
import { demo } from '../index.mjs'

describe('example: a level module (sublevels + level-read-stream) on two sites', () => {
  it('gives at both sites, after replication, what it gives on one memory-level', async () => {
    const mem = orderBook(new MemoryLevel())
    await mem.place('o-001', { customer: 'ada', amount: 30 })
    await mem.place('o-002', { customer: 'bob', amount: 12 })
    await mem.place('o-003', { customer: 'ada', amount: 5 })
    const expected = { ada: await mem.idsOf('ada'), total: await mem.total('o-000', 'o-999') }
    expect(expected).toEqual({ ada: ['o-001', 'o-003'], total: 47 })
    const result = await demo({ latencyMs: 5 })
    expect(result).toEqual({ paris: expected, lyon: expected })
  })
})
