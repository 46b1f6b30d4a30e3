import { describe, expect, it } from 'vitest'
import { createSimNetwork } from '../src/index.js'
import { fakeHandler, ticks } from './helpers.js'

describe('peers at run time (addPeer / removePeer)', () => {
  it('the default mesh includes sites whose adapters are created later; removePeer takes a link down, addPeer brings it back', async () => {
    const net = createSimNetwork()
    const a = net.adapter('a')
    const fa = fakeHandler()
    await a.start('a', fa.handler)
    const b = net.adapter('b')
    const fb = fakeHandler()
    await b.start('b', fb.handler)
    await ticks()
    expect(a.peers().map((p) => p.site)).toEqual(['b'])
    expect(fa.events).toEqual(['up:b'])
    a.removePeer('b')
    await ticks()
    expect(a.peers()).toEqual([])
    expect(a.connected('b')).toBe(false)
    expect(fa.events).toEqual(['up:b', 'down:b'])
    expect(fb.events).toEqual(['up:a', 'down:a'])
    a.addPeer({ site: 'b' })
    await ticks()
    expect(a.connected('b')).toBe(true)
    expect(fa.events).toEqual(['up:b', 'down:b', 'up:b'])
    await net.close()
  })

  it('an explicit allow-list grows with addPeer, even before the peer has an adapter', async () => {
    const net = createSimNetwork()
    const a = net.adapter('a', { peers: [{ site: 'b' }] })
    const fa = fakeHandler()
    await a.start('a', fa.handler)
    a.addPeer({ site: 'c', send: false })
    expect(a.peers()).toEqual([
      { site: 'b', send: true, receive: true },
      { site: 'c', send: false, receive: true },
    ])
    const c = net.adapter('c')
    await c.start('c', fakeHandler().handler)
    await ticks()
    expect(a.connected('c')).toBe(true)
    expect(() => a.addPeer({ site: 'a' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    expect(() => a.removePeer('Not Valid')).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    await net.close()
  })
})
