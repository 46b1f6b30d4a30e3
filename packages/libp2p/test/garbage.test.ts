import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { encodeFrame, libp2pNetwork, REPLICATION_PROTOCOL } from '../src/index.js'
import type { Libp2pNetwork } from '../src/index.js'
import { RecordingHandler, Scratch, keysFor, recordingLogger, sleep, waitFor } from './helpers.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('a misbehaving allow-listed peer', () => {
  const scratch = new Scratch()
  const nets: Libp2pNetwork[] = []
  let raw: Libp2p | undefined
  beforeEach(async () => { await scratch.init() })
  afterEach(async () => {
    await raw?.stop()
    raw = undefined
    await Promise.all(nets.splice(0).map((n) => n.stop()))
    await scratch.cleanup()
  })

  async function rawNode(keyName: string): Promise<Libp2p> {
    const privateKey = privateKeyFromProtobuf(await readFile(scratch.path(keyName)))
    raw = await createLibp2p({ privateKey, addresses: { listen: [] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    return raw
  }

  const hello = (from: string, to: string): Uint8Array => encodeFrame(enc(JSON.stringify({ causeway: 'causeway-replication/1', from, to })))

  for (const [name, garbage] of [
    ['an oversize length prefix', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])],
    ['a too-long varint', new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])],
    ['a non-canonical varint', new Uint8Array([0x85, 0x00])],
  ] as const) {
    it(`is disconnected and logged for ${name}, while the site keeps serving others`, async () => {
      const ids = await keysFor(scratch, ['a', 'b', 'c'])
      const logA = recordingLogger()
      const netA = await libp2pNetwork({ privateKey: scratch.path('a.key'), peers: [{ site: 'b', peerId: ids['b'] }, { site: 'c', peerId: ids['c'] }], logger: logA, maxFrameBytes: 1024 })
      const netC = await libp2pNetwork({ privateKey: scratch.path('c.key'), peers: [{ site: 'a', addrs: netA.addrs }], dialIntervalMs: 50 })
      nets.push(netA, netC)
      const ha = new RecordingHandler()
      await netA.start('a', ha)
      await netC.start('c', new RecordingHandler())
      await waitFor(() => netA.connected('c'), 10_000, 'c connected')

      const evil = await rawNode('b.key')
      const conn = await evil.dial(multiaddr(netA.addrs[0]!))
      const stream = await conn.newStream(REPLICATION_PROTOCOL)
      stream.send(hello('b', 'a'))
      await waitFor(() => netA.connected('b'), 5000, 'b up')
      stream.send(encodeFrame(enc('fine')))
      stream.send(garbage)
      await waitFor(() => !netA.connected('b'), 5000, 'b dropped')
      await waitFor(() => conn.status !== 'open', 5000, 'connection closed')
      expect(logA.lines.some((l) => l.level === 'warn' && l.msg?.includes('protocol error') === true)).toBe(true)
      expect(ha.framesFrom('b').length).toBe(1)
      expect(ha.events.filter((e) => e.endsWith(':b'))).toEqual(['up:b', 'down:b'])
      // The site still serves c.
      netC.send('a', enc('still here'))
      await waitFor(() => ha.framesFrom('c').length === 1, 5000, 'c frame')
    })
  }

  it('a stream that never says hello times out and is dropped', async () => {
    const ids = await keysFor(scratch, ['a', 'b'])
    const logA = recordingLogger()
    const netA = await libp2pNetwork({ privateKey: scratch.path('a.key'), peers: [{ site: 'b', peerId: ids['b'] }], logger: logA, helloTimeoutMs: 200 })
    nets.push(netA)
    const ha = new RecordingHandler()
    await netA.start('a', ha)
    const evil = await rawNode('b.key')
    const conn = await evil.dial(multiaddr(netA.addrs[0]!))
    const stream = await conn.newStream(REPLICATION_PROTOCOL)
    await waitFor(() => stream.status !== 'open', 5000, 'stream aborted')
    expect(logA.lines.some((l) => l.msg?.includes('hello timed out') === true)).toBe(true)
    expect(ha.ups).toBe(0)
  })

  it('a bad hello (wrong JSON) is a protocol error', async () => {
    const ids = await keysFor(scratch, ['a', 'b'])
    const logA = recordingLogger()
    const netA = await libp2pNetwork({ privateKey: scratch.path('a.key'), peers: [{ site: 'b', peerId: ids['b'] }], logger: logA })
    nets.push(netA)
    const ha = new RecordingHandler()
    await netA.start('a', ha)
    const evil = await rawNode('b.key')
    const conn = await evil.dial(multiaddr(netA.addrs[0]!))
    const stream = await conn.newStream(REPLICATION_PROTOCOL)
    stream.send(encodeFrame(enc('{"__proto__":{"polluted":1},"causeway":1}')))
    await waitFor(() => conn.status !== 'open', 5000, 'connection dropped')
    await sleep(50)
    expect(ha.ups).toBe(0)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })
})
