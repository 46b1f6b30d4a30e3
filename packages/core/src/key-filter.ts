import { KEY_FILTER_BITS_PER_KEY, KEY_FILTER_FIRST_KEYS, KEY_FILTER_MAX_KEYS, KEY_FILTER_PROBES } from './limits.js'

/**
 * Which keys a shard may hold a state for: a scalable Bloom filter (a chain of filters, each twice
 * the capacity of the one before, so it grows with the key space without a rebuild scan).
 *
 * `mayHave(key) === false` means the key has never been written through this shard object and was
 * not in the db when the filter was built: a read would find nothing, so the shard skips it (new
 * keys cost no storage round trip). Keys are never removed (a deleted key is a false positive,
 * which only costs the read it costs today). Until `markReady()` every key "may" be there.
 */
export class KeyFilter {
  private layers: Array<{ bits: Uint32Array; mask: number; capacity: number; count: number }> = []
  private total = 0
  private ready = false
  private disabled = false

  constructor(private readonly firstKeys = KEY_FILTER_FIRST_KEYS, private readonly maxKeys = KEY_FILTER_MAX_KEYS) {
    this.grow()
  }

  /** Answers are definite only once every key of the db has been added. */
  markReady(): void {
    if (!this.disabled) this.ready = true
  }

  get isReady(): boolean {
    return this.ready
  }

  /** Record a key about to be written (call before the write is issued). */
  add(key: string): void {
    if (this.disabled) return
    hashes(key)
    if (this.test()) return // already there (or a false positive: then it stays "maybe", correct)
    let top = this.layers[this.layers.length - 1]!
    if (top.count >= top.capacity) {
      if (this.total >= this.maxKeys) return this.disable()
      top = this.grow()
    }
    for (let i = 0; i < KEY_FILTER_PROBES; i++) {
      const b = (H1 + Math.imul(i, H2)) & top.mask
      top.bits[b >>> 5]! |= 1 << (b & 31)
    }
    top.count++
    this.total++
  }

  /** false: the key certainly has no state in this shard. */
  mayHave(key: string): boolean {
    if (!this.ready) return true
    hashes(key)
    return this.test()
  }

  /** Too many keys to keep bounded: answer "maybe" for ever (reads go to storage, as without it). */
  disable(): void {
    this.disabled = true
    this.ready = false
    this.layers = []
  }

  private test(): boolean {
    for (const l of this.layers) {
      let all = true
      for (let i = 0; i < KEY_FILTER_PROBES; i++) {
        const b = (H1 + Math.imul(i, H2)) & l.mask
        if ((l.bits[b >>> 5]! & (1 << (b & 31))) === 0) {
          all = false
          break
        }
      }
      if (all) return true
    }
    return false
  }

  private grow(): { bits: Uint32Array; mask: number; capacity: number; count: number } {
    const capacity = this.firstKeys * 2 ** this.layers.length
    let nbits = 32
    while (nbits < capacity * KEY_FILTER_BITS_PER_KEY) nbits *= 2
    const l = { bits: new Uint32Array(nbits / 32), mask: nbits - 1, capacity, count: 0 }
    this.layers.push(l)
    return l
  }
}

// Two independent 32-bit hashes of the key in one pass (the shard of a key is fnv1a % shards, so the
// filter must not reuse fnv1a: every key of a shard shares its low bits). Module state: no allocation.
let H1 = 0
let H2 = 0
function hashes(s: string): void {
  let a = 0x9747b28c
  let b = 0x85ebca6b
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    a = Math.imul(a ^ c, 0x5bd1e995)
    a ^= a >>> 15
    b = Math.imul(b ^ c, 0x27d4eb2f)
    b ^= b >>> 13
  }
  H1 = fmix(a ^ s.length) >>> 0
  H2 = (fmix(b + s.length) | 1) >>> 0 // odd: the probes of a power-of-two filter never cycle early
}
function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h
}

/** Longest term prefix the term filter records in steps (longer ones only at boundaries, below). */
const TERM_STEP = 8
const TERM_STEP_MAX = 64
/** A char below this ends a "part" of a compound term (the ORM joins columns with U+0001). */
const BOUNDARY = 0x20

/**
 * Which index terms may have records in a shard, to skip a shard's iterator for a scan whose range
 * cannot match anything here (a lookup of a term written in another shard, or never). For each term
 * it records the prefixes of length 8, 16, ... 64, every prefix ending before a control char, and
 * the whole term; a scan range whose bounds share a prefix probes the longest one it is sure every
 * matching term has.
 */
export class TermFilter {
  readonly keys: KeyFilter

  constructor(firstKeys?: number, maxKeys?: number) {
    this.keys = new KeyFilter(firstKeys, maxKeys)
  }

  addTerm(index: string, term: string): void {
    const base = index + '\u0000'
    for (let l = TERM_STEP; l <= Math.min(term.length, TERM_STEP_MAX); l += TERM_STEP) this.keys.add(base + term.slice(0, l))
    for (let i = 0; i < term.length; i++) if (term.charCodeAt(i) < BOUNDARY) this.keys.add(base + term.slice(0, i))
    this.keys.add(base + term)
  }

  /**
   * false: no record of `index` in [lower, upper) exists here. The bounds are over `<term>\0<key>`
   * (an index record without its `i!<index>!` base); undefined upper = to the end of the index.
   */
  mayHaveRange(index: string, lower: string, upper: string | undefined): boolean {
    if (!this.keys.isReady || upper === undefined) return true
    let k = 0
    const n = Math.min(lower.length, upper.length)
    while (k < n && lower.charCodeAt(k) === upper.charCodeAt(k)) k++
    let c = upper.slice(0, k)
    const z = c.indexOf('\u0000')
    // Every record in range starts with c. The char after c in a record is below upper's there; if
    // that is a boundary (or the term's end, \0), every matching term has the prefix c exactly.
    if (z >= 0) c = c.slice(0, z)
    else if (!(upper.length > k && upper.charCodeAt(k) <= BOUNDARY)) {
      const l = Math.floor(Math.min(k, TERM_STEP_MAX) / TERM_STEP) * TERM_STEP
      if (l === 0) return true
      c = c.slice(0, l)
    }
    return this.keys.mayHave(index + '\u0000' + c)
  }
}
