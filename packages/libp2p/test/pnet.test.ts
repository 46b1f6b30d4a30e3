import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import fc from 'fast-check'
import { xsalsa20 as nobleXsalsa20 } from '@noble/ciphers/salsa.js'
import { preSharedKey } from '@libp2p/pnet'
import { multiaddrConnectionPair } from '@libp2p/utils'
import type { ConnectionProtector, MessageStream } from '@libp2p/interface'
import { generateSwarmKey } from '../src/index.js'
import { decodeSwarmKey, pskProtector } from '../src/pnet.js'
import { XSalsa20Stream, XSALSA20_MAX_STREAM_BYTES } from '../src/xsalsa20.js'

const require = createRequire(import.meta.url)
/** The cipher @libp2p/pnet uses (WASM): the reference for wire compatibility. */
const stockXsalsa20 = require('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { update(b: Uint8Array): Uint8Array }

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))

/** Split `data` at the given cut points (sorted, deduplicated, in range). */
function split(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) { out.push(data.subarray(prev, p)); prev = p }
  out.push(data.subarray(prev))
  return out
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

describe('XSalsa20Stream', () => {
  it('matches the NaCl stream3 vector (XSalsa20 keystream)', () => {
    // Key and nonce from NaCl's tests/stream3.c; the first 32 keystream bytes.
    const key = unhex('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389')
    const nonce = unhex('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37')
    const want = 'eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880'
    expect(hex(new XSalsa20Stream(key, nonce).update(new Uint8Array(32)))).toBe(want)
    expect(hex(stockXsalsa20(nonce, key).update(new Uint8Array(32)))).toBe(want)
  })

  it('any split of the input gives the same bytes as the stock cipher and as one-shot noble', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 24, maxLength: 24 }),
      fc.uint8Array({ minLength: 0, maxLength: 1000 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (key, nonce, data, cuts) => {
        const mine = new XSalsa20Stream(key, nonce)
        const stock = stockXsalsa20(nonce, key)
        const parts = split(data, cuts)
        const a = concat(parts.map((p) => mine.update(p)))
        const b = concat(parts.map((p) => stock.update(p)))
        expect(hex(a)).toBe(hex(b))
        expect(hex(a)).toBe(hex(nobleXsalsa20(key, nonce, data)))
      },
    ), { numRuns: 300 })
  })

  it('two streams interleaved after a 1 MiB update keep working (the stock cipher throws here)', () => {
    const key = new Uint8Array(32).fill(1)
    const a = new XSalsa20Stream(key, new Uint8Array(24).fill(2))
    const b = new XSalsa20Stream(key, new Uint8Array(24).fill(3))
    const aRef = new XSalsa20Stream(key, new Uint8Array(24).fill(2))
    a.update(new Uint8Array(1024 * 1024))
    aRef.update(new Uint8Array(1024 * 1024))
    for (let i = 0; i < 2000; i++) {
      a.update(new Uint8Array(100))
      b.update(new Uint8Array(100))
    }
    // Still the right keystream position: 1 MiB + 2000 * 100 bytes in.
    expect(hex(a.update(new Uint8Array(64)))).toBe(hex(nobleXsalsa20(key, new Uint8Array(24).fill(2), new Uint8Array(1024 * 1024 + 200_000 + 64)).subarray(-64)))
  })

  it('refuses to run past the end of its keystream instead of wrapping', () => {
    const s = new XSalsa20Stream(new Uint8Array(32), new Uint8Array(24))
    // Jump near the end (256 GiB would take minutes to reach for real).
    ;(s as unknown as { positionBytes: number }).positionBytes = XSALSA20_MAX_STREAM_BYTES - 70
    expect(s.update(new Uint8Array(70)).length).toBe(70) // the last block is usable
    expect(s.remainingBytes).toBe(0)
    expect(() => s.update(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'CLOSED' }))
    expect(s.update(new Uint8Array(0)).length).toBe(0)
  })

  it('rejects keys and nonces of the wrong size', () => {
    expect(() => new XSalsa20Stream(new Uint8Array(16), new Uint8Array(24))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
    expect(() => new XSalsa20Stream(new Uint8Array(32), new Uint8Array(8))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
  })
})

describe('decodeSwarmKey', () => {
  it('decodes the generated format and refuses anything else', () => {
    const file = generateSwarmKey()
    const key = decodeSwarmKey(file)
    expect(hex(key)).toBe(new TextDecoder().decode(file).split('\n')[2])
    for (const bad of ['', '/key/swarm/psk/1.0.0/\n/base16/\nabc', '/key/swarm/psk/1.0.0/\n/base64/\n' + 'a'.repeat(64), '/key/swarm/psk/2.0.0/\n/base16/\n' + 'a'.repeat(64)]) {
      expect(() => decodeSwarmKey(new TextEncoder().encode(bad))).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    }
  })
})

/** Collect what arrives on a protected stream until `n` bytes are in. */
function receive(stream: MessageStream, n: number): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const parts: Uint8Array[] = []
    let got = 0
    stream.addEventListener('message', (evt) => {
      const d = evt.data
      const bufs = d instanceof Uint8Array ? [d] : [...d]
      for (const b of bufs) { parts.push(b.slice()); got += b.length }
      if (got >= n) resolve(concat(parts))
    })
  })
}

async function protectPair(left: ConnectionProtector, right: ConnectionProtector): Promise<[MessageStream, MessageStream, MessageStream[]]> {
  const [outbound, inbound] = multiaddrConnectionPair()
  const [a, b] = await Promise.all([left.protect(outbound), right.protect(inbound)])
  return [a, b, [outbound, inbound]]
}

describe('pskProtector is wire-compatible with @libp2p/pnet', () => {
  const messages = (seed: number): Uint8Array[] => {
    // Small and large messages (the large one grows the stock cipher's memory once, harmlessly).
    const sizes = [1, 63, 64, 65, 1000, 200 * 1024, 17, 3]
    return sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (j * 31 + i * 7 + seed) & 0xff))
  }

  for (const [name, mineLeft] of [['ours dials stock', true], ['stock dials ours', false]] as const) {
    it(`${name}: bytes arrive intact both ways`, async () => {
      const psk = generateSwarmKey()
      const ours = pskProtector({ psk })()
      const stock = preSharedKey({ psk })()
      const [a, b, raw] = await protectPair(mineLeft ? ours : stock, mineLeft ? stock : ours)
      const toB = messages(1)
      const toA = messages(2)
      const atB = receive(b, toB.reduce((n, m) => n + m.length, 0))
      const atA = receive(a, toA.reduce((n, m) => n + m.length, 0))
      for (let i = 0; i < toB.length; i++) { a.send(toB[i]!); b.send(toA[i]!) }
      expect(hex(await atB)).toBe(hex(concat(toB)))
      expect(hex(await atA)).toBe(hex(concat(toA)))
      for (const s of [a, b, ...raw]) s.abort(new Error('done'))
    })
  }

  it('different swarm keys do not understand each other', async () => {
    const ours = pskProtector({ psk: generateSwarmKey() })()
    const stock = preSharedKey({ psk: generateSwarmKey() })()
    const [a, b, raw] = await protectPair(ours, stock)
    const got = receive(b, 5)
    a.send(new TextEncoder().encode('hello'))
    expect(new TextDecoder().decode(await got)).not.toBe('hello')
    for (const s of [a, b, ...raw]) s.abort(new Error('done'))
  })

  it('closes the connection instead of reusing keystream when one direction runs out', async () => {
    const psk = generateSwarmKey()
    const [a, b, raw] = await protectPair(pskProtector({ psk })(), preSharedKey({ psk })())
    // Jump a's outbound keystream to 10 bytes before its end (256 GiB would take minutes).
    const out = (a as unknown as { outbound: { positionBytes: number } }).outbound
    out.positionBytes = XSALSA20_MAX_STREAM_BYTES - 10
    const closed = new Promise<void>((resolve) => a.addEventListener('close', () => resolve(), { once: true }))
    const got: Uint8Array[] = []
    b.addEventListener('message', (evt) => { got.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()) })
    a.send(new Uint8Array(11))
    await closed
    expect(a.status).not.toBe('open')
    expect(got).toEqual([]) // nothing was sent under a wrapped keystream
    for (const s of [b, ...raw]) s.abort(new Error('done'))
  })

  it('validates the key up front', () => {
    expect(() => pskProtector({ psk: new TextEncoder().encode('nope') })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
  })
})
