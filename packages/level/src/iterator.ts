import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level'
import { cmpUtf8 } from '@causeway/core'
import type { ScanKeysOptions, Value } from '@causeway/core'
import { fromStoredKey, fromStoredValue } from './codec.js'
import type { CausewayLevel } from './level.js'

/** One end of a key range: `open` excludes `key` itself. */
export type Bound = { key: string; open: boolean }

type Format = string | Uint8Array
type Opts = { [k: string]: unknown }

/** The first batch is small (a range read often wants a few keys), later ones grow to this. */
const FIRST_BATCH = 16
const MAX_BATCH = 1000

/**
 * A position in a range of one CausewayLevel, read a chunk at a time with the site's ordered
 * cross-shard scan (scanKeys) and, for values, one session.getMany per chunk. There is no
 * snapshot: each chunk reads the state at the time it is fetched (the manifest says so).
 */
export class Cursor {
  private readonly reverse: boolean
  private readonly rangeLo: Bound | undefined
  private readonly rangeHi: Bound | undefined
  private lo: Bound | undefined
  private hi: Bound | undefined
  private remaining: number
  private ended = false
  private closed = false

  constructor(private readonly db: CausewayLevel, options: Opts, private readonly withValues: boolean) {
    this.reverse = options.reverse === true
    const limit = options.limit
    this.remaining = typeof limit === 'number' && Number.isInteger(limit) && limit >= 0 ? limit : Infinity
    // abstract-level's rule: gte wins over gt, lte over lt (not the tighter of the two).
    const lo = options.gte !== undefined ? db.bound(options.gte as Format, false)
      : options.gt !== undefined ? db.bound(options.gt as Format, true) : undefined
    const hi = options.lte !== undefined ? db.bound(options.lte as Format, false)
      : options.lt !== undefined ? db.bound(options.lt as Format, true) : undefined
    this.rangeLo = this.lo = lo
    this.rangeHi = this.hi = hi
  }

  /** Up to `size` live entries after the cursor, as [full stored key, value]; [] at the end. */
  async fetch(size: number): Promise<Array<[string, Value | undefined]>> {
    for (;;) {
      const want = Math.min(size, this.remaining)
      if (this.ended || this.closed || want <= 0) return []
      const opts: ScanKeysOptions = { reverse: this.reverse, limit: want }
      if (this.lo) opts[this.lo.open ? 'gt' : 'gte'] = this.lo.key
      if (this.hi) opts[this.hi.open ? 'lt' : 'lte'] = this.hi.key
      const keys: string[] = []
      for await (const k of this.db.site.scanKeys(this.db.keyPrefix, opts)) keys.push(k)
      if (keys.length < want) this.ended = true
      if (keys.length === 0) return []
      const last: Bound = { key: keys[keys.length - 1]!, open: true }
      if (this.reverse) this.hi = last
      else this.lo = last
      let out: Array<[string, Value | undefined]>
      if (!this.withValues) out = keys.map((k) => [k, undefined])
      else {
        // Through the session: the values read join the database's causal context.
        const m = await this.db.readSession().getMany(keys)
        out = []
        for (const k of keys) {
          const e = m.get(k)
          if (e !== undefined) out.push([k, e.value]) // else deleted since the scan: skip it
        }
      }
      if (out.length === 0) continue
      this.remaining -= out.length
      return out
    }
  }

  /** Continue at the first key at or after `target` (at or before it in reverse), within the range. */
  seek(target: Format): void {
    const at = this.db.bound(target, false)
    if (this.reverse) this.hi = tighterHi(this.rangeHi, at)
    else this.lo = tighterLo(this.rangeLo, at)
    this.ended = false
  }

  close(): void {
    this.closed = true
  }
}

function tighterLo(a: Bound | undefined, b: Bound): Bound {
  if (a === undefined) return b
  const c = cmpUtf8(a.key, b.key)
  return c > 0 || (c === 0 && a.open) ? a : b
}

function tighterHi(a: Bound | undefined, b: Bound): Bound {
  if (a === undefined) return b
  const c = cmpUtf8(a.key, b.key)
  return c < 0 || (c === 0 && a.open) ? a : b
}

/** Buffers a cursor's chunks for next(); nextv() takes whole chunks. */
class Reader {
  readonly cursor: Cursor
  private buf: Array<[string, Value | undefined]> = []
  private pos = 0
  private batch = FIRST_BATCH
  readonly keyFormat: string
  readonly valueFormat: string
  private readonly cut: number

  constructor(db: CausewayLevel, options: Opts, withValues: boolean) {
    this.cursor = new Cursor(db, options, withValues)
    this.keyFormat = (options.keyEncoding as string | undefined) ?? 'utf8'
    this.valueFormat = (options.valueEncoding as string | undefined) ?? 'utf8'
    this.cut = db.keyPrefix.length
  }

  key(stored: string): Format {
    return fromStoredKey(stored.slice(this.cut), this.keyFormat)
  }

  value(v: Value | undefined): Format {
    return fromStoredValue(v as Value, this.valueFormat)
  }

  async next(): Promise<[string, Value | undefined] | undefined> {
    if (this.pos >= this.buf.length) {
      this.buf = await this.cursor.fetch(this.batch)
      this.pos = 0
      this.batch = Math.min(this.batch * 4, MAX_BATCH)
      if (this.buf.length === 0) return undefined
    }
    return this.buf[this.pos++]
  }

  async nextv(size: number): Promise<Array<[string, Value | undefined]>> {
    if (this.pos < this.buf.length) {
      const out = this.buf.slice(this.pos, this.pos + size)
      this.pos += out.length
      return out
    }
    return this.cursor.fetch(Math.min(size, MAX_BATCH))
  }

  seek(target: Format): void {
    this.buf = []
    this.pos = 0
    this.batch = FIRST_BATCH
    this.cursor.seek(target)
  }
}

export class EntryIterator extends AbstractIterator<CausewayLevel, Format, Format> {
  private readonly r: Reader
  constructor(db: CausewayLevel, options: Opts) {
    super(db, options as never)
    this.r = new Reader(db, options, true)
  }
  async _next(): Promise<[Format, Format] | undefined> {
    const e = await this.r.next()
    return e === undefined ? undefined : [this.r.key(e[0]), this.r.value(e[1])]
  }
  async _nextv(size: number): Promise<Array<[Format, Format]>> {
    return (await this.r.nextv(size)).map((e) => [this.r.key(e[0]), this.r.value(e[1])])
  }
  _seek(target: Format): void {
    this.r.seek(target)
  }
  async _close(): Promise<void> {
    this.r.cursor.close()
  }
}

export class KeyIterator extends AbstractKeyIterator<CausewayLevel, Format> {
  private readonly r: Reader
  constructor(db: CausewayLevel, options: Opts) {
    super(db, options as never)
    this.r = new Reader(db, options, false)
  }
  async _next(): Promise<Format | undefined> {
    const e = await this.r.next()
    return e === undefined ? undefined : this.r.key(e[0])
  }
  async _nextv(size: number): Promise<Format[]> {
    return (await this.r.nextv(size)).map((e) => this.r.key(e[0]))
  }
  _seek(target: Format): void {
    this.r.seek(target)
  }
  async _close(): Promise<void> {
    this.r.cursor.close()
  }
}

export class ValueIterator extends AbstractValueIterator<CausewayLevel, Format, Format> {
  private readonly r: Reader
  constructor(db: CausewayLevel, options: Opts) {
    super(db, options as never)
    this.r = new Reader(db, options, true)
  }
  async _next(): Promise<Format | undefined> {
    const e = await this.r.next()
    return e === undefined ? undefined : this.r.value(e[1])
  }
  async _nextv(size: number): Promise<Format[]> {
    return (await this.r.nextv(size)).map((e) => this.r.value(e[1]))
  }
  _seek(target: Format): void {
    this.r.seek(target)
  }
  async _close(): Promise<void> {
    this.r.cursor.close()
  }
}
