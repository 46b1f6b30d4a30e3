import { CausewayError } from '@causeway/core'

/** Default hard cap on one replication frame (the engine's batches stay well below it). */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024

/**
 * Longest accepted length prefix. 5 varint bytes cover 2^35 - 1, far above any sane
 * maxFrameBytes; anything longer is malformed and is rejected before it is summed.
 */
const MAX_VARINT_BYTES = 5

/** Bytes needed to encode `n` as an unsigned LEB128 varint. */
export function varintLength(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    len++
  }
  return len
}

/** Encode one frame: unsigned varint length, then the bytes (one contiguous buffer, one stream write). */
export function encodeFrame(bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength
  const out = new Uint8Array(varintLength(n) + n)
  let v = n
  let i = 0
  while (v >= 0x80) {
    out[i++] = (v % 0x80) | 0x80
    v = Math.floor(v / 0x80)
  }
  out[i++] = v
  out.set(bytes, i)
  return out
}

/** A chunk of incoming bytes: a Uint8Array or anything iterable over Uint8Arrays (Uint8ArrayList). */
export type Chunk = Uint8Array | Iterable<Uint8Array>

/**
 * Incremental decoder of length-prefixed frames with a hard size limit.
 *
 * Never throws for any input and never allocates more than `maxFrameBytes` for one frame: the
 * claimed length is checked while the prefix is still being read, before any allocation.
 * After the first protocol error the decoder is poisoned and keeps returning that error, because
 * the byte stream can no longer be re-synchronised; the connection must be dropped.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number
  /** Length being accumulated from the varint prefix. */
  private lengthValue = 0
  private lengthBytes = 0
  /** Body of the frame being filled (allocated once its length has been validated). */
  private body: Uint8Array | undefined
  private bodyFilled = 0
  private failure: CausewayError | undefined

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1) {
      throw new CausewayError('INVALID_OPTIONS', `maxFrameBytes must be a positive integer, got ${String(maxFrameBytes)}`)
    }
    this.maxFrameBytes = maxFrameBytes
  }

  /** The protocol error that poisoned this decoder, if any. */
  get error(): CausewayError | undefined {
    return this.failure
  }

  /** Bytes of a partially received frame held in memory (bounded by maxFrameBytes). */
  get bufferedBytes(): number {
    return this.bodyFilled
  }

  /**
   * Feed bytes; `onFrame` is called for every complete frame, in order, with a buffer the callee
   * owns. Returns the protocol error (also kept in `error`) or undefined. If `onFrame` throws,
   * the decoder records that as an error too, so one bad consumer cannot wedge the stream.
   */
  push(chunk: Chunk, onFrame: (frame: Uint8Array) => void): CausewayError | undefined {
    if (this.failure !== undefined) return this.failure
    try {
      if (chunk instanceof Uint8Array) {
        this.pushBytes(chunk, onFrame)
      } else {
        for (const part of chunk) {
          if (!(part instanceof Uint8Array)) {
            this.fail('chunk part is not a Uint8Array')
            break
          }
          this.pushBytes(part, onFrame)
          if (this.failure !== undefined) break
        }
      }
    } catch (err) {
      if (this.failure === undefined) {
        this.failure = new CausewayError('INVALID_FRAME', 'frame consumer failed', { cause: err })
      }
    }
    return this.failure
  }

  private fail(message: string, details: Record<string, unknown> = {}): void {
    this.failure = new CausewayError('INVALID_FRAME', message, { details })
  }

  private pushBytes(buf: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    let i = 0
    const n = buf.byteLength
    while (i < n) {
      if (this.failure !== undefined) return
      if (this.body === undefined) {
        // Reading the length prefix, one byte at a time.
        const b = buf[i++]!
        if (this.lengthBytes > 0 && b === 0) {
          // A trailing zero continuation group is an overlong (non-canonical) encoding.
          this.fail('non-canonical frame length prefix')
          return
        }
        this.lengthValue += (b & 0x7f) * 2 ** (7 * this.lengthBytes)
        this.lengthBytes++
        if (this.lengthValue > this.maxFrameBytes) {
          this.fail(`frame length exceeds maxFrameBytes (${this.maxFrameBytes})`, { maxFrameBytes: this.maxFrameBytes })
          return
        }
        if ((b & 0x80) !== 0) {
          if (this.lengthBytes >= MAX_VARINT_BYTES) {
            this.fail('frame length prefix too long')
            return
          }
          continue
        }
        const len = this.lengthValue
        this.lengthValue = 0
        this.lengthBytes = 0
        if (len === 0) {
          onFrame(new Uint8Array(0))
          continue
        }
        this.body = new Uint8Array(len)
        this.bodyFilled = 0
      }
      // Filling the body.
      const body = this.body
      const take = Math.min(body.byteLength - this.bodyFilled, n - i)
      body.set(buf.subarray(i, i + take), this.bodyFilled)
      this.bodyFilled += take
      i += take
      if (this.bodyFilled === body.byteLength) {
        this.body = undefined
        this.bodyFilled = 0
        onFrame(body)
      }
    }
  }
}
