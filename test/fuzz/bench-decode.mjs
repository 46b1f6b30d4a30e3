// Quick decode throughput check, old path (msgpackr unpack + normalize, + assertValue walk for
// network values) against the bounded reader: `node test/fuzz/bench-decode.mjs` after a build.
// Not part of any test (no timing assertions); figures are reported in docs/protocol.md.
import { Packr } from 'msgpackr'
import { assertValue, decodeStored, decodeValue, encodeValue } from '../../packages/core/dist/codec.js'
import { decodeEntry, encodeEntry } from '../../packages/core/dist/entry.js'
import { decodeFrame, encodeFrame } from '../../packages/core/dist/protocol.js'

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number', encodeUndefinedAsNil: false, bundleStrings: false })
function normalize(v) {
  if (v === null || typeof v !== 'object') return v
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v)
  if (v instanceof Date) return v
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = normalize(v[i])
    return v
  }
  for (const k of Object.keys(v)) v[k] = normalize(v[k])
  return v
}
const oldStored = (b) => normalize(packr.unpack(b))
const oldValue = (b) => {
  const v = normalize(packr.unpack(b))
  assertValue(v)
  return v
}

const cases = {
  'small object': { state: 'building', n: 42, ok: true, at: new Date(1_700_000_000_000), tags: ['a', 'b'] },
  'number': 12345,
  'short string': 'hello world',
  'row (12 columns)': Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`column_${i}`, i % 3 === 0 ? `value ${i} é` : i * 1.25])),
  '1 KiB string': 'x'.repeat(1024),
  '4 KiB binary': new Uint8Array(4096).fill(3),
  'nested list of 100 objects': Array.from({ length: 100 }, (_, i) => ({ id: i, name: `item-${i}`, price: i * 0.5 })),
}
const bench = (fn, bytes) => {
  const until = performance.now() + 300
  let n = 0
  while (performance.now() < until) for (let i = 0; i < 200; i++, n++) fn(bytes)
  return n / 0.3
}
const fmt = (x) => Math.round(x).toLocaleString('en').padStart(12)
console.log('case'.padEnd(28), 'stored old/s'.padStart(12), 'stored new/s'.padStart(12), 'value old/s'.padStart(12), 'value new/s'.padStart(12))
for (const [name, v] of Object.entries(cases)) {
  const b = Buffer.from(encodeValue(v, 1 << 20)) // LevelDB hands out Buffers
  for (let w = 0; w < 3; w++) bench(decodeStored, b), bench(oldStored, b), bench(decodeValue, b), bench(oldValue, b)
  console.log(name.padEnd(28), fmt(bench(oldStored, b)), fmt(bench(decodeStored, b)), fmt(bench(oldValue, b)), fmt(bench(decodeValue, b)))
}
const entry = encodeEntry({ stream: 'a/0', seq: 3, time: 9, site: 'a', deps: [['b/1', 2]], ops: [{ key: 'vm/42', value: encodeValue(cases['small object'], 1 << 20), supersedes: [] }] })
const frame = encodeFrame({ t: 'writes', e: Array.from({ length: 64 }, () => entry) })
const oldFrame = (b) => packr.unpack(b)
console.log('writes frame, 64 entries'.padEnd(28), 'unpack old/s', fmt(bench(oldFrame, frame)), 'decodeFrame new/s', fmt(bench(decodeFrame, frame)))
console.log('entry incl. value check'.padEnd(28), 'decodeEntry new/s', fmt(bench((b) => decodeEntry(b, 1 << 20), entry)))

// Rejections (issue 14.3 and 14.5): old = msgpackr unpack wrapped in try/catch as decodeUntrusted did.
const oldReject = (b) => {
  try {
    packr.unpack(b)
  } catch (e) {
    return e
  }
}
const newReject = (b) => {
  try {
    decodeFrame(b)
  } catch (e) {
    return e
  }
}
const empty = new Uint8Array(0)
for (const [name, fn] of [['old', oldReject], ['new', newReject]]) {
  const t0 = performance.now()
  for (let i = 0; i < 100_000; i++) fn(empty)
  console.log(`reject 100,000 empty frames, ${name}: ${(performance.now() - t0).toFixed(0)} ms`)
}
const big = encodeEntry({ stream: 'a/0', seq: 1, time: 1, site: 'a', deps: [], ops: [{ key: 'k', value: encodeValue(new Uint8Array(1 << 20), 2 << 20), supersedes: [] }] })
const bigFrame = encodeFrame({ t: 'writes', e: [big] })
const trailing = new Uint8Array(bigFrame.length + 1)
trailing.set(bigFrame)
for (const [name, fn] of [['old', oldReject], ['new', newReject]]) {
  let best = Infinity
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    fn(trailing)
    best = Math.min(best, performance.now() - t0)
  }
  console.log(`reject a 1 MiB writes frame with one trailing byte, ${name}: ${best.toFixed(3)} ms (best of 5)`)
}
