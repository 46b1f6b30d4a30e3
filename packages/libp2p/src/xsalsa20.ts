import { xsalsa20 } from '@noble/ciphers/salsa.js'
import { CausewayError } from '@causeway/core'

/**
 * A streaming XSalsa20 keystream (the cipher of libp2p's pnet protocol) on top of @noble/ciphers'
 * pure-JS, audited, stateless `xsalsa20(key, nonce, data, output, counter)`.
 *
 * Why not the `xsalsa20` npm package @libp2p/pnet uses: its WASM build keeps a per-instance view
 * of one shared WebAssembly memory; after any instance grows it, every other instance's view is
 * stale and grows it again by a page per update, until the 64 MiB cap throws a RangeError out of
 * a socket handler (issue #8; scripts/repro-xsalsa20.mjs). Here there is no shared state at all:
 * each update allocates only its output and computes at most one partial block on the side.
 */

const BLOCK_BYTES = 64
/** noble refuses block counters >= 2^32 - 1 (it never wraps its 32-bit public counter). */
const MAX_BLOCKS = 2 ** 32 - 1
/** Keystream bytes one direction of a connection can use: 256 GiB minus one block. */
export const XSALSA20_MAX_STREAM_BYTES = MAX_BLOCKS * BLOCK_BYTES
export const XSALSA20_KEY_BYTES = 32
export const XSALSA20_NONCE_BYTES = 24

export class XSalsa20Stream {
  private readonly key: Uint8Array
  private readonly nonce: Uint8Array
  /** Keystream bytes consumed so far (the stream position). */
  private positionBytes = 0
  /** Keystream of the block the position is inside of, when the position is not block-aligned. */
  private readonly partial = new Uint8Array(BLOCK_BYTES)

  constructor(key: Uint8Array, nonce: Uint8Array) {
    if (key.byteLength !== XSALSA20_KEY_BYTES) throw new CausewayError('INVALID_ARGUMENT', `xsalsa20 key must be ${XSALSA20_KEY_BYTES} bytes, got ${key.byteLength}`)
    if (nonce.byteLength !== XSALSA20_NONCE_BYTES) throw new CausewayError('INVALID_ARGUMENT', `xsalsa20 nonce must be ${XSALSA20_NONCE_BYTES} bytes, got ${nonce.byteLength}`)
    this.key = Uint8Array.from(key)
    this.nonce = Uint8Array.from(nonce)
  }

  /** Bytes that can still be processed before the keystream is exhausted. */
  get remainingBytes(): number {
    return XSALSA20_MAX_STREAM_BYTES - this.positionBytes
  }

  /** XOR `input` with the next input.byteLength keystream bytes; returns a new array. */
  update(input: Uint8Array): Uint8Array {
    const len = input.byteLength
    if (len > this.remainingBytes) {
      // A reconnect starts a fresh keystream (new nonces); never reuse or wrap this one.
      throw new CausewayError('CLOSED', `xsalsa20 keystream exhausted (${XSALSA20_MAX_STREAM_BYTES} bytes per connection direction)`)
    }
    const out = new Uint8Array(len)
    let done = 0
    const within = this.positionBytes % BLOCK_BYTES
    if (within !== 0) {
      done = Math.min(BLOCK_BYTES - within, len)
      for (let i = 0; i < done; i++) out[i] = input[i]! ^ this.partial[within + i]!
    }
    const rest = len - done
    if (rest > 0) {
      // From here on the position is block-aligned.
      const block = (this.positionBytes + done) / BLOCK_BYTES
      const tail = rest % BLOCK_BYTES
      const full = rest - tail
      if (full > 0) xsalsa20(this.key, this.nonce, input.subarray(done, done + full), out.subarray(done, done + full), block)
      if (tail > 0) {
        // Keep the whole keystream block: the next update continues inside it.
        this.partial.fill(0)
        xsalsa20(this.key, this.nonce, this.partial, this.partial, block + full / BLOCK_BYTES)
        for (let i = 0; i < tail; i++) out[done + full + i] = input[done + full + i]! ^ this.partial[i]!
      }
    }
    this.positionBytes += len
    return out
  }

  /** Wipe the key material (the stream is unusable afterwards). */
  destroy(): void {
    this.key.fill(0)
    this.nonce.fill(0)
    this.partial.fill(0)
    this.positionBytes = XSALSA20_MAX_STREAM_BYTES
  }
}
