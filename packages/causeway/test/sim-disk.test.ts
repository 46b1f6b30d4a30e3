import { describe, expect, it } from 'vitest'
import { createSimDisk } from '../src/sim-disk.js'

describe('the simulator disk', () => {
  it('a power loss drops the writes since the last synced one, and nothing before it', async () => {
    const d = createSimDisk()
    await d.db.open()
    const v = (n: number) => Uint8Array.of(n)
    const get = async (k: string) => {
      const x = await d.db.get(k)
      return x === undefined ? undefined : Uint8Array.from(x)
    }
    await d.db.put('a', v(1))
    await d.db.batch([{ type: 'put', key: 'b', value: v(2) }], { sync: true } as never) // makes a and b durable
    await d.db.put('a', v(3))
    await d.db.del('b')
    await d.db.batch([{ type: 'put', key: 'c', value: v(4) }])
    expect(await d.powerLoss()).toBe(3)
    expect(await get('a')).toEqual(v(1))
    expect(await get('b')).toEqual(v(2))
    expect(await get('c')).toBeUndefined()
    // Survives close and reopen (a site restart).
    await d.db.close()
    await d.db.open()
    expect(await get('b')).toEqual(v(2))
    expect(await d.powerLoss()).toBe(0)
    await d.db.close()
  })
})
