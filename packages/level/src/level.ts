import { AbstractLevel } from 'abstract-level'
import ModuleError from 'module-error'
import { CausewayError } from '@causeway/core'
import type { Session, Site, WriteOp } from '@causeway/core'
import { fromStoredValue, invalidKey, MAX_KEY_BYTES, storedKeyBytes, toStoredKey, toStoredValue } from './codec.js'
import { Cursor, EntryIterator, KeyIterator, ValueIterator, type Bound } from './iterator.js'

export interface CausewayLevelOptions {
  /** The site holding the data; the database never closes it. */
  site: Site
  /** Stored keys are `<prefix><key>`, so several databases (and plain sessions) share a site. Default ''. */
  prefix?: string
  /**
   * The session to read and write through (e.g. `site.session({ context, waitMs })` to continue a
   * causal thread from another site). Default: a fresh `site.session()` at every open.
   */
  session?: Session
  /** Default key encoding (abstract-level option), default 'utf8'. */
  keyEncoding?: string
  /** Default value encoding (abstract-level option), default 'utf8'. */
  valueEncoding?: string
}

type Format = string | Uint8Array
type Opts = { keyEncoding?: string; valueEncoding?: string; [k: string]: unknown }
type BatchOp = { type: 'put'; key: Format; value: Format; keyEncoding?: string; valueEncoding?: string } | { type: 'del'; key: Format }

/** Ops per session.write of clear() (clear is not atomic in abstract-level either). */
const CLEAR_CHUNK = 256

/**
 * An abstract-level (v3) database over one session of a site. Every read and write goes through
 * that session, so the database is one causal thread: a read sees the database's own writes and
 * everything they depended on. abstract-level's transcoder turns every encoding into one of the
 * formats declared in the manifest ('utf8', 'buffer', 'view'); this class maps those to Causeway
 * keys and values (see codec.ts).
 */
export class CausewayLevel extends AbstractLevel<Format, string, string> {
  readonly site: Site
  /** The option `prefix` (abstract-level reserves `db.prefix` for sublevels). */
  readonly keyPrefix: string
  private readonly prefixBytes: number
  private session: Session | undefined
  private readonly given: Session | undefined

  constructor(options: CausewayLevelOptions) {
    const { site, prefix = '', session, ...forward } = options ?? ({} as CausewayLevelOptions)
    if (site === null || typeof site !== 'object' || typeof site.session !== 'function') {
      throw new CausewayError('INVALID_OPTIONS', 'CausewayLevel needs { site }')
    }
    if (typeof prefix !== 'string' || !prefix.isWellFormed() || Buffer.byteLength(prefix) >= MAX_KEY_BYTES) {
      throw new CausewayError('INVALID_OPTIONS', 'prefix must be a well-formed string under 1024 UTF-8 bytes')
    }
    super(
      {
        encodings: { utf8: true, buffer: true, view: true },
        // Iterators read the committed state chunk by chunk as they advance, not a snapshot.
        implicitSnapshots: false,
        explicitSnapshots: false,
        has: true,
        // Data lives in the site and outlives close(); open() cannot tell "missing" from "empty".
        permanence: true,
        createIfMissing: false,
        errorIfExists: false,
        seek: true,
        deferredOpen: true,
        additionalMethods: {},
      },
      forward,
    )
    this.site = site
    this.keyPrefix = prefix
    this.prefixBytes = Buffer.byteLength(prefix)
    this.given = session
  }

  /** The causal context token of the database's session (continue it elsewhere with `session`). */
  context(): string {
    return this.s().context()
  }

  async _open(): Promise<void> {
    // A fresh causal thread per open unless one was given; a closed site throws CLOSED here.
    try {
      this.session = this.given ?? this.site.session()
    } catch (e) {
      throw mapError(e)
    }
  }

  async _close(): Promise<void> {
    this.session = undefined
  }

  /** The full Causeway key for an abstract-level key, or LEVEL_INVALID_KEY. */
  private key(key: Format): string {
    const stored = toStoredKey(key)
    const full = this.keyPrefix + stored
    if (full.length === 0) throw invalidKey('key must not be empty (without a prefix)')
    if (storedKeyBytes(this.prefixBytes, stored) > MAX_KEY_BYTES) {
      throw invalidKey(`key is over ${MAX_KEY_BYTES} bytes (prefix included, bytes 0x80-0xff count twice)`)
    }
    return full
  }

  private s(): Session {
    if (this.session === undefined) throw new ModuleError('Database is not open', { code: 'LEVEL_DATABASE_NOT_OPEN' })
    return this.session
  }

  async _get(key: Format, options: Opts): Promise<Format | undefined> {
    const k = this.key(key)
    const e = await this.s().get(k).catch(rethrow)
    return e === undefined ? undefined : fromStoredValue(e.value, options.valueEncoding ?? 'utf8')
  }

  async _getMany(keys: Format[], options: Opts): Promise<Array<Format | undefined>> {
    const ks = keys.map((k) => this.key(k))
    const m = await this.s().getMany(ks).catch(rethrow)
    const fmt = options.valueEncoding ?? 'utf8'
    return ks.map((k) => {
      const e = m.get(k)
      return e === undefined ? undefined : fromStoredValue(e.value, fmt)
    })
  }

  async _has(key: Format): Promise<boolean> {
    return (await this.s().get(this.key(key)).catch(rethrow)) !== undefined
  }

  async _hasMany(keys: Format[]): Promise<boolean[]> {
    const ks = keys.map((k) => this.key(k))
    const m = await this.s().getMany(ks).catch(rethrow)
    return ks.map((k) => m.has(k))
  }

  async _put(key: Format, value: Format): Promise<void> {
    await this.s().put(this.key(key), toStoredValue(value)).catch(rethrow)
  }

  async _del(key: Format): Promise<void> {
    await this.s().delete(this.key(key)).catch(rethrow)
  }

  /** Atomic: one session.write; a key given twice keeps its last operation (abstract-level order). */
  async _batch(operations: BatchOp[]): Promise<void> {
    const byKey = new Map<string, WriteOp>()
    for (const op of operations) {
      const k = this.key(op.key)
      byKey.delete(k) // re-insert so the op order stays the order of last occurrence
      byKey.set(k, op.type === 'put' ? { key: k, value: toStoredValue(op.value) } : { key: k, delete: true })
    }
    if (byKey.size === 0) return
    await this.s().write([...byKey.values()]).catch(rethrow)
  }

  _iterator(options: Opts): EntryIterator {
    return new EntryIterator(this, options)
  }

  _keys(options: Opts): KeyIterator {
    return new KeyIterator(this, options)
  }

  _values(options: Opts): ValueIterator {
    return new ValueIterator(this, options)
  }

  /** Deletes the range a chunk of keys at a time (each chunk one atomic write). */
  async _clear(options: Opts): Promise<void> {
    const it = new Cursor(this, options, false)
    const session = this.s()
    try {
      for (;;) {
        const keys = (await it.fetch(CLEAR_CHUNK)).map(([k]) => k)
        if (keys.length === 0) return
        await session.write(keys.map((key) => ({ key, delete: true as const }))).catch(rethrow)
      }
    } finally {
      it.close()
    }
  }

  /** @internal for the iterator */
  readSession(): Session {
    return this.s()
  }

  /** @internal the range bound for an abstract-level range option (prefixed, not length-checked). */
  bound(key: Format, open: boolean): Bound {
    return { key: this.keyPrefix + toStoredKey(key), open }
  }
}

export function rethrow(e: unknown): never {
  throw mapError(e)
}

/** Causeway's codes as abstract-level's own codes, so level code handles them as it expects. */
function mapError(e: unknown): unknown {
  if (!(e instanceof CausewayError)) return e
  const code =
    e.code === 'INVALID_KEY' ? 'LEVEL_INVALID_KEY'
    : e.code === 'INVALID_VALUE' || e.code === 'VALUE_TOO_LARGE' ? 'LEVEL_INVALID_VALUE'
    : e.code === 'CLOSED' ? 'LEVEL_DATABASE_NOT_OPEN'
    : undefined
  return code === undefined ? e : new ModuleError(e.message, { code, cause: e })
}
