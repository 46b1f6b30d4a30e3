import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import { CausewayError } from '@causeway/core'
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'
import { XSalsa20Stream, XSALSA20_KEY_BYTES, XSALSA20_NONCE_BYTES } from './xsalsa20.js'

/**
 * libp2p private networks (pnet, "PSK v1"), wire-compatible with @libp2p/pnet and go-libp2p:
 * each side sends a random 24-byte nonce, then every byte each way is XORed with the XSalsa20
 * keystream of (swarm key, the sender's nonce). Only the cipher differs from @libp2p/pnet: see
 * xsalsa20.ts for why its WASM cipher cannot be used. Plugged in through libp2p's own
 * `connectionProtector` interface.
 */

const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'
/** @libp2p/pnet's default: the nonce exchange is one round trip. */
const DEFAULT_NONCE_TIMEOUT_MS = 1000

export interface PskProtectorInit {
  /** The swarm key file's bytes (v1 text format, as readSwarmKeyFile returns them). */
  psk: Uint8Array
  /** The nonce exchange must complete within this time unless libp2p passes its own signal. */
  nonceTimeoutMs?: number
}

/** The 32-byte key inside a v1 swarm key file. */
export function decodeSwarmKey(file: Uint8Array): Uint8Array {
  const lines = new TextDecoder().decode(file).split(/\r\n|\r|\n/)
  const hex = lines[2] ?? ''
  if (lines[0] !== SWARM_KEY_HEADER || lines[1] !== '/base16/' || !/^[0-9a-f]{64}$/.test(hex)) {
    throw new CausewayError('INVALID_OPTIONS', 'not a v1 base16 libp2p swarm key')
  }
  const key = new Uint8Array(XSALSA20_KEY_BYTES)
  for (let i = 0; i < key.length; i++) key[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return key
}

class PskProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = '@causeway/libp2p/pnet'
  private readonly key: Uint8Array
  private readonly nonceTimeoutMs: number

  constructor(init: PskProtectorInit) {
    this.key = decodeSwarmKey(init.psk)
    this.nonceTimeoutMs = init.nonceTimeoutMs ?? DEFAULT_NONCE_TIMEOUT_MS
  }

  async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    // libp2p's upgrader hands protectors the raw MultiaddrConnection.
    const maConn = connection as MultiaddrConnection
    const log = maConn.log.newScope('pnet')
    const localNonce = crypto.getRandomValues(new Uint8Array(XSALSA20_NONCE_BYTES))
    const opts: AbortOptions = options ?? { signal: AbortSignal.timeout(this.nonceTimeoutMs) }
    const bytes = byteStream(maConn)
    const [remote] = await Promise.all([bytes.read({ bytes: XSALSA20_NONCE_BYTES, ...opts }), bytes.write(localNonce, opts)])
    log('exchanged nonces')
    return new PskConnection(bytes.unwrap(), new XSalsa20Stream(this.key, localNonce), new XSalsa20Stream(this.key, remote.subarray()), log)
  }
}

/** What the base class hands sendData (its own uint8arraylist version). */
type WriteBuffer = Parameters<AbstractMultiaddrConnection['sendData']>[0]

/** The protected connection: decrypts what the socket delivers, encrypts what the upper layers send. */
class PskConnection extends AbstractMultiaddrConnection {
  constructor(
    private readonly inner: MultiaddrConnection,
    private readonly outbound: XSalsa20Stream,
    private readonly inbound: XSalsa20Stream,
    log: MultiaddrConnection['log'],
  ) {
    super({ remoteAddr: inner.remoteAddr, direction: inner.direction, log })
    inner.addEventListener('message', (evt) => {
      const data = evt.data
      try {
        if (data instanceof Uint8Array) this.onData(this.inbound.update(data))
        else for (const buf of data) this.onData(this.inbound.update(buf))
      } catch (err) {
        // Keystream exhausted: end this connection (libp2p redials with fresh nonces).
        this.abort(err as Error)
      }
    })
    inner.addEventListener('drain', () => { this.onMuxerDrain() })
    inner.addEventListener('close', (evt) => {
      this.wipe()
      if (evt.error == null) this.onTransportClosed()
      else if (evt.local) this.abort(evt.error)
      else this.onRemoteReset()
    })
  }

  private wipe(): void {
    this.outbound.destroy()
    this.inbound.destroy()
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.inner.close(options)
  }

  sendData(data: WriteBuffer): SendResult {
    if (data.byteLength > this.outbound.remainingBytes) {
      const err = new CausewayError('CLOSED', 'pnet keystream exhausted; closing the connection')
      queueMicrotask(() => this.abort(err))
      return { sentBytes: 0, canSendMore: false }
    }
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(this.outbound.update(data.subarray())) }
  }

  sendReset(err: Error): void {
    this.inner.abort(err)
  }

  sendPause(): void {
    this.inner.pause()
  }

  sendResume(): void {
    this.inner.resume()
  }
}

/** A libp2p `connectionProtector` factory, a drop-in for @libp2p/pnet's preSharedKey(). */
export function pskProtector(init: PskProtectorInit): () => ConnectionProtector {
  const protector = new PskProtector(init) // decode (and validate) the key once, up front
  return () => protector
}
