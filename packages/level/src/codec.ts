import type { Value } from '@causeway/core'
import ModuleError from 'module-error'

/**
 * Key and value mapping between abstract-level's formats ('utf8', 'buffer', 'view') and Causeway.
 *
 * Keys: abstract-level orders keys by their bytes and accepts any bytes (`buffer`/`view` keys need
 * not be UTF-8), while a Causeway key is a string ordered by UTF-8 bytes. A key's bytes (a string
 * key's UTF-8 bytes) are stored as one char per byte (latin1): injective, and its UTF-8 order is the
 * byte order. ASCII keys — the common case — are therefore stored unchanged (`app/users/42`).
 */

/** Causeway's key limit (codec.ts MAX_KEY_BYTES), in UTF-8 bytes of the stored key. */
export const MAX_KEY_BYTES = 1024

const ASCII = /^[\x00-\x7f]*$/

/** The stored form (without prefix) of a key given in abstract-level format `format`. */
export function toStoredKey(key: string | Uint8Array): string {
  if (typeof key === 'string') return ASCII.test(key) ? key : Buffer.from(key, 'utf8').toString('latin1')
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')
}

/** A stored key (without prefix) back in abstract-level format `format`. */
export function fromStoredKey(stored: string, format: string): string | Uint8Array {
  if (format === 'utf8') return ASCII.test(stored) ? stored : Buffer.from(stored, 'latin1').toString('utf8')
  const b = Buffer.from(stored, 'latin1')
  return format === 'buffer' ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

/** UTF-8 length of a stored key: one byte per char below 0x80, two above (chars are ≤ 0xff). */
export function storedKeyBytes(prefixBytes: number, stored: string): number {
  let n = prefixBytes + stored.length
  if (!ASCII.test(stored)) for (let i = 0; i < stored.length; i++) if (stored.charCodeAt(i) >= 0x80) n++
  return n
}

export function invalidKey(message: string): ModuleError {
  return new ModuleError(message, { code: 'LEVEL_INVALID_KEY' })
}

/** The Causeway value for an abstract-level value: a string (utf8) or a private copy of the bytes. */
export function toStoredValue(value: string | Uint8Array): Value {
  if (typeof value === 'string') return value
  return new Uint8Array(value) // a copy: the caller may reuse its buffer after put() resolves
}

const decoder = new TextDecoder()

/**
 * A Causeway value as abstract-level format `format`. Values written by plain sessions that are
 * neither strings nor bytes read as their JSON text (so `valueEncoding: 'json'` reads them).
 */
export function fromStoredValue(value: Value, format: string): string | Uint8Array {
  if (format === 'utf8') {
    if (typeof value === 'string') return value
    if (value instanceof Uint8Array) return decoder.decode(value)
    return JSON.stringify(value)
  }
  let b: Buffer
  if (value instanceof Uint8Array) b = Buffer.from(value) // a copy: never hand out the engine's bytes
  else b = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8')
  return format === 'buffer' ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}
