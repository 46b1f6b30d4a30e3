// Fuzz targets and mutators shared by the vitest properties/replay tests (which pass the TypeScript
// sources) and the long-running fuzzer test/fuzz/fuzz.mjs (which passes the built dist modules).
// Plain JavaScript so Node 20 runs it without a compile step.

/** Which error codes each decoder may throw; anything else escaping is a finding. */
export const ALLOWED_CODES = {
  decodeValue: ['INVALID_FRAME'],
  decodeStored: ['INVALID_FRAME'],
  decodeEntry: ['INVALID_FRAME'],
  decodeFrame: ['INVALID_FRAME'],
  contextToken: ['INVALID_CONTEXT'],
  framer: ['INVALID_FRAME'],
}
export const TARGET_NAMES = Object.keys(ALLOWED_CODES)

/**
 * `m`: { decodeValue, decodeStored, decodeEntry, decodeFrame, CausalContext, crc32, CausewayError,
 *        FrameDecoder, FramerError (the CausewayError class the framer's package sees) }.
 * Each target takes the input made by `prepare` (untimed: the harness's own work, e.g. wrapping bytes
 * into a token with a valid checksum so they reach the decoder) and either returns (accepted),
 * throws an allowed CausewayError (rejected), or anything else (a finding).
 */
export function makeTargets(m) {
  const MAX_VALUE_BYTES = 1 << 20
  return {
    decodeValue: (b) => m.decodeValue(b),
    decodeStored: (b) => m.decodeStored(b),
    decodeEntry: (b) => m.decodeEntry(b, MAX_VALUE_BYTES),
    decodeFrame: (b) => m.decodeFrame(b),
    contextToken: (token) => m.CausalContext.decode(token),
    framer: (b) => {
      const d = new m.FrameDecoder(64 * 1024)
      // Feed in two chunks (split point from the bytes themselves, deterministic), as a stream would.
      const cut = b.length === 0 ? 0 : b[0] % (b.length + 1)
      let err = d.push(b.subarray(0, cut), (f) => m.decodeFrame(f))
      if (err === undefined) err = d.push(b.subarray(cut), (f) => m.decodeFrame(f))
      if (err !== undefined) throw err // the framer returns its error; a rejection for the stats
    },
  }
}

/** The harness's untimed step from raw bytes to a target's input. */
export function prepare(m, name, bytes) {
  return name === 'contextToken' ? tokenOf(m.crc32, bytes) : bytes
}

export function tokenOf(crc32, body) {
  const out = Buffer.alloc(body.length + 4)
  out.writeUInt32BE(crc32(body), 0)
  out.set(body, 4)
  return 'cw1.' + out.toString('base64url')
}

/** Runs one target on a prepared input; returns 'ok' | 'rejected' | the untyped error. */
export function runPrepared(m, targets, name, input) {
  try {
    targets[name](input)
    return 'ok'
  } catch (e) {
    const cls = name === 'framer' ? m.FramerError : m.CausewayError
    if (e instanceof cls && ALLOWED_CODES[name].includes(e.code)) return 'rejected'
    return e
  }
}

// Prototype pollution: own property names of the built-in prototypes a decoder could reach.
const PROTOS = [Object.prototype, Array.prototype, Function.prototype, String.prototype, Number.prototype, Uint8Array.prototype, Date.prototype, Error.prototype]
/** Prepare and run (for tests, where nothing is timed). */
export function runTarget(m, targets, name, bytes, options = {}) {
  if (options.rethrow) return targets[name](prepare(m, name, bytes))
  return runPrepared(m, targets, name, prepare(m, name, bytes))
}

export function prototypeSnapshot() {
  return PROTOS.map((p) => Object.getOwnPropertyNames(p).sort().join(',')).join('|')
}
/** Cheap per-input check: a polluted Object.prototype shows an enumerable inherited key. */
export function quickPolluted() {
  for (const _ in {}) return true
  for (const _ in []) return true
  return false
}

// ------------------------------------------------------------------ mutators

/** Small deterministic PRNG (mulberry32) so a run is replayable from its seed. */
export function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const int = (r, n) => Math.floor(r() * n)

const concat = (...parts) => {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

const INTERESTING = [
  [0xc1], [0xc0], [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], [0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], [0xca, 0x7f, 0xc0, 0, 0],
  [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], [0xdd, 0xff, 0xff, 0xff, 0xff],
  [0xdf, 0xff, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdb, 0xff, 0xff, 0xff, 0xff], [0xc9, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xd6, 0xff, 0xff, 0xff, 0xff, 0xff], [0xd7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xc7, 12, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xa9, ...Buffer.from('__proto__')], [0xab, ...Buffer.from('constructor')], [0xa9, ...Buffer.from('prototype')],
  [0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa8, ...Buffer.from('polluted'), 0xc3],
  [0xa2, 0xed, 0xa0], [0xa1, 0xff], [0xa3, 0xef, 0xbf, 0xbd], [0x90], [0x80], [0xdc, 0, 0], [0xde, 0, 1],
]
// msgpackr's own extension types (Error 0x65, RegExp 0x78, Set 0x73, BigInt 0x42, typed arrays 0x74,
// records 0x72, pointers 0x70...) and others.
const EXT_TYPES = [0x00, 0x42, 0x62, 0x65, 0x69, 0x6d, 0x70, 0x72, 0x73, 0x74, 0x75, 0x78, 0xfe, 0xff, 0x7f, 0x80]

/** One mutated input from `seed` (a Uint8Array), sometimes spliced with `other`. */
export function mutate(r, seed, other) {
  let b = seed
  const rounds = 1 + int(r, 4)
  for (let k = 0; k < rounds; k++) {
    const n = b.length
    const at = int(r, n + 1)
    switch (int(r, 12)) {
      case 0: {
        if (n === 0) break
        b = b.slice()
        const i = int(r, n)
        b[i] ^= 1 << int(r, 8)
        break
      }
      case 1: {
        if (n === 0) break
        b = b.slice()
        b[int(r, n)] = int(r, 256)
        break
      }
      case 2: {
        const ins = new Uint8Array(1 + int(r, 8))
        for (let i = 0; i < ins.length; i++) ins[i] = int(r, 256)
        b = concat(b.subarray(0, at), ins, b.subarray(at))
        break
      }
      case 3: {
        const len = 1 + int(r, 16)
        b = concat(b.subarray(0, at), b.subarray(Math.min(n, at + len)))
        break
      }
      case 4: {
        // splice a piece of another real input in
        const o = other.length === 0 ? 0 : int(r, other.length)
        const piece = other.subarray(o, o + 1 + int(r, 64))
        b = r() < 0.5 ? concat(b.subarray(0, at), piece, b.subarray(at)) : concat(b.subarray(0, at), piece, b.subarray(Math.min(n, at + piece.length)))
        break
      }
      case 5: {
        // length field edit: find a length-carrying type byte and rewrite its length
        b = b.slice()
        for (let tries = 0; tries < 8 && n > 0; tries++) {
          const i = int(r, n)
          const t = b[i]
          const lens = [0, 1, 0xff, 0xffff, 0xffffffff, n, n - i, n - i - 1, n - i + 1]
          const L = lens[int(r, lens.length)] >>> 0
          if ((t >= 0x80 && t <= 0x9f) || (t >= 0xa0 && t <= 0xbf)) {
            b[i] = (t & 0xf0) | (L & 0x0f)
            if (t >= 0xa0) b[i] = 0xa0 | (L & 0x1f)
            break
          }
          if (t === 0xc4 || t === 0xd9 || t === 0xc7) {
            if (i + 1 < n) b[i + 1] = L & 0xff
            break
          }
          if (t === 0xc5 || t === 0xda || t === 0xdc || t === 0xde || t === 0xc8) {
            if (i + 2 < n) (b[i + 1] = (L >>> 8) & 0xff), (b[i + 2] = L & 0xff)
            break
          }
          if (t === 0xc6 || t === 0xdb || t === 0xdd || t === 0xdf || t === 0xc9) {
            if (i + 4 < n) for (let j = 0; j < 4; j++) b[i + 1 + j] = (L >>> (24 - 8 * j)) & 0xff
            break
          }
        }
        break
      }
      case 6: {
        // deep nesting injection (arrays or maps)
        const depth = [8, 63, 64, 65, 66, 200, 5000, 20000][int(r, 8)]
        const unit = r() < 0.5 ? [0x91] : [0x81, 0xa1, 0x61]
        const deep = new Uint8Array(depth * unit.length)
        for (let i = 0; i < depth; i++) deep.set(unit, i * unit.length)
        b = concat(b.subarray(0, at), deep, r() < 0.5 ? Uint8Array.of(0xc0) : new Uint8Array(0), b.subarray(at))
        break
      }
      case 7: {
        // extension injection (msgpackr's built-in types and others), fixext or ext8
        const t = r() < 0.7 ? EXT_TYPES[int(r, EXT_TYPES.length)] : int(r, 256)
        const payload = r() < 0.5 ? Uint8Array.from(Buffer.from('92ab636f6e7374727563746f72a16d', 'hex')) : Uint8Array.from({ length: int(r, 16) }, () => int(r, 256))
        if (r() < 0.4) {
          // msgpackr style: some of its extensions (Error, RegExp, Set...) ignore their one data byte
          // and read the *next* item as their content: `d4 <type> 00 <item>`.
          b = concat(b.subarray(0, at), Uint8Array.of(0xd4, t, int(r, 256)), payload, b.subarray(at))
          break
        }
        const head = payload.length === 1 ? [0xd4, t] : payload.length === 2 ? [0xd5, t] : payload.length === 4 ? [0xd6, t] : payload.length === 8 ? [0xd7, t] : [0xc7, payload.length, t]
        b = concat(b.subarray(0, at), Uint8Array.from(head), payload, b.subarray(at))
        break
      }
      case 8:
        b = b.subarray(0, at) // truncate
        break
      case 9:
        b = concat(b, Uint8Array.from({ length: 1 + int(r, 4) }, () => int(r, 256))) // trailing bytes
        break
      case 10: {
        const x = Uint8Array.from(INTERESTING[int(r, INTERESTING.length)])
        b = r() < 0.5 ? concat(b.subarray(0, at), x, b.subarray(at)) : concat(b.subarray(0, at), x, b.subarray(Math.min(n, at + x.length)))
        break
      }
      case 11: {
        // duplicate a region (repeats containers and keys)
        const len = 1 + int(r, 32)
        const piece = b.subarray(at, at + len)
        b = concat(b.subarray(0, at), piece, piece, b.subarray(at + piece.length))
        break
      }
    }
  }
  return b
}

export const toHex = (b) => Buffer.from(b).toString('hex')
export const fromHex = (s) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
