/**
 * A running digest of delivered frames: SHA-256 over (delivery time, from, to, length, bytes) of
 * each frame in delivery order, plus the count. Native hashing keeps it cheap enough to be always
 * on in virtual time; a digest, not a log, so memory stays constant over long runs.
 */
import { createHash, type Hash } from 'node:crypto'

export class FrameTrace {
  private readonly hash: Hash = createHash('sha256')
  private count = 0

  add(atMs: number, from: string, to: string, bytes: Uint8Array): void {
    this.count++
    // Microsecond resolution: delivery times carry fractional jitter.
    this.hash.update(`${Math.round(atMs * 1000)}|${from}|${to}|${bytes.byteLength}|`)
    this.hash.update(bytes)
  }

  /** `<count>:<first 16 hex digits of the running hash>`. */
  digest(): string {
    return `${this.count}:${this.hash.copy().digest('hex').slice(0, 16)}`
  }
}
