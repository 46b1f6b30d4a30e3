#!/usr/bin/env node
// Long-running decoder fuzzer: `npm run fuzz -- --minutes 10 [--seed N] [--slow-ms 10] [--no-save]`.
//
// 1. Runs a workload on three memory sites over @causeway/sim and captures real material through a
//    wrapping network adapter: every frame exchanged, the write entries inside `writes` frames, the
//    values inside the entries, the sessions' context tokens, and length-prefixed libp2p streams.
// 2. Mutates that material (bit flips, byte inserts/deletes, splices, length-field edits, deep-nesting
//    and extension-type injection, truncation, trailing bytes) and feeds every input to every decoder.
// 3. Reports untyped exceptions, slow inputs (over --slow-ms, confirmed by re-runs), heap growth
//    (heapUsed after gc, needs --expose-gc) and prototype pollution. Each finding is saved under
//    test/fuzz/corpus/ as <target>--found-<kind>-<hash>.hex, which test/fuzz/replay.test.ts replays.
// Imports the built dist (run `npm run build` first; the npm script does).
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { decodeStored, decodeValue, encodeValue } from '../../packages/core/dist/codec.js'
import { decodeEntry, encodeEntry } from '../../packages/core/dist/entry.js'
import { decodeFrame, encodeFrame } from '../../packages/core/dist/protocol.js'
import { CausalContext, crc32 } from '../../packages/core/dist/context.js'
import { CausewayError } from '../../packages/core/dist/errors.js'
import { createSite } from '../../packages/core/dist/site.js'
import { createSimNetwork } from '../../packages/sim/dist/index.js'
import { FrameDecoder, encodeFrame as lengthPrefixed } from '../../packages/libp2p/dist/frame.js'
import { makeTargets, mutate, prepare, prototypeSnapshot, quickPolluted, rng, runPrepared, TARGET_NAMES, toHex } from './targets.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? dflt : args[i + 1]
}
const minutes = Number(opt('minutes', 1))
const seed = Number(opt('seed', Date.now() % 1_000_000))
const slowMs = Number(opt('slow-ms', 10))
const save = !args.includes('--no-save')
if (!(minutes > 0)) throw new Error('--minutes must be a positive number')
const gc = globalThis.gc
if (typeof gc !== 'function') console.warn('run with --expose-gc for heap figures (the npm script does)')

const m = { decodeValue, decodeStored, decodeEntry, decodeFrame, CausalContext, crc32, CausewayError, FrameDecoder, FramerError: CausewayError }
const targets = makeTargets(m)

// ------------------------------------------------------------------ capture real material
async function capture() {
  const frames = []
  const tokens = []
  const net = createSimNetwork({})
  const wrap = (inner) => ({
    start: (id, handler) =>
      inner.start(id, {
        ...handler,
        peerUp: (p) => handler.peerUp(p),
        peerDown: (p) => handler.peerDown(p),
        drain: (p) => handler.drain(p),
        inspect: () => handler.inspect(),
        frame: (peer, bytes) => {
          if (frames.length < 5000) frames.push(Uint8Array.prototype.slice.call(bytes))
          handler.frame(peer, bytes)
        },
      }),
    peers: () => inner.peers(),
    send: (peer, bytes) => inner.send(peer, bytes),
    connected: (peer) => inner.connected(peer),
    stop: () => inner.stop(),
    get maxFrameBytes() {
      return inner.maxFrameBytes
    },
  })
  const quiet = { debug() {}, info() {}, warn() {}, error() {} }
  const ids = ['a', 'b', 'c']
  const sites = []
  for (const id of ids) sites.push(await createSite({ id, storage: 'memory', heartbeatMs: 20, logger: quiet, network: wrap(net.adapter(id)), conflicts: { default: 'lww', prefixes: { 'multi/': 'return-all' } } }))
  const r = rng(seed)
  const sample = (i) => {
    switch (i % 9) {
      case 0: return { n: i, s: 'x'.repeat(i % 50), ok: i % 2 === 0, none: null }
      case 1: return [i, -i, i * 1.5, 2 ** 40 + i, -(2 ** 50), 'é€😀', new Date(1_700_000_000_000 + i)]
      case 2: return new Uint8Array(1 + (i % 3000)).fill(i & 0xff)
      case 3: return JSON.parse(`{"__proto__":{"polluted":${i}},"constructor":{"prototype":{"x":1}},"a":[{"__proto__":[]}]}`)
      case 4: return 'long string '.repeat(1 + (i % 200))
      case 5: return { deep: [[[[[[{ k: [i] }]]]]]], date: new Date(-86_400_000 * (i % 400)), f: Math.PI * i }
      case 6: return i
      case 7: return { ['k' + i]: { nested: { list: Array.from({ length: i % 20 }, (_, j) => ({ j })) } } }
      default: return i % 45 === 8 ? new Uint8Array(40_000 + (i % 5) * 10_000).fill(7) : { big: 'y'.repeat(i * 10) }
    }
  }
  for (let i = 0; i < 400; i++) {
    const s = sites[i % 3].session()
    const key = `${i % 7 === 0 ? 'multi/' : ''}k${int(r, 60)}`
    if (i % 11 === 0) await s.delete(key)
    else if (i % 13 === 0) await s.write([{ key: `w/${i}/a`, value: sample(i) }, { key: `w/${i}/b`, value: sample(i + 1) }, { key, delete: true }])
    else await s.put(key, sample(i))
    await s.get(`k${int(r, 60)}`)
    if (i % 5 === 0) {
      // continue a session elsewhere with its token
      const t = s.context()
      tokens.push(t)
      const other = sites[(i + 1) % 3].session({ context: t, waitMs: 2000 })
      try {
        await other.get(key)
        tokens.push(other.context())
      } catch {
        // CONTEXT_UNAVAILABLE while replication catches up: fine
      }
    }
  }
  for (const s of sites) await s.idle(10_000).catch(() => {})
  await new Promise((res) => setTimeout(res, 200)) // a few heartbeats
  for (const s of sites) await s.close()
  await net.close()

  const entries = []
  const values = []
  for (const f of frames) {
    const d = decodeFrame(f)
    if (d.t !== 'writes') continue
    for (const e of d.e) {
      if (entries.length < 3000) entries.push(Uint8Array.prototype.slice.call(e))
      for (const op of decodeEntry(e, 1 << 20).ops) if (op.value && values.length < 3000) values.push(op.value)
    }
  }
  const tokenBodies = tokens.map((t) => new Uint8Array(Buffer.from(t.slice(4), 'base64url').subarray(4)))
  const streams = []
  for (let i = 0; i + 2 < frames.length && streams.length < 1000; i += 3) streams.push(concatAll([lengthPrefixed(frames[i]), lengthPrefixed(frames[i + 1]), lengthPrefixed(frames[i + 2])]))
  return { frame: uniq(frames), entry: uniq(entries), value: uniq(values), token: uniq(tokenBodies), stream: streams }
}
const int = (r, n) => Math.floor(r() * n)
function concatAll(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) out.set(p, (o += p.length) - p.length)
  return out
}
function uniq(list) {
  const seen = new Set()
  return list.filter((b) => {
    const h = createHash('sha1').update(b).digest('hex')
    return seen.has(h) ? false : (seen.add(h), true)
  })
}

// ------------------------------------------------------------------ fuzz loop
const corpus = await capture()
const kinds = Object.keys(corpus).filter((k) => corpus[k].length > 0)
console.log(`seed ${seed}; captured ${kinds.map((k) => `${corpus[k].length} ${k}s`).join(', ')}; running ${minutes} min, slow > ${slowMs} ms`)

const stats = {
  inputs: 0,
  calls: Object.fromEntries(TARGET_NAMES.map((n) => [n, 0])),
  accepted: Object.fromEntries(TARGET_NAMES.map((n) => [n, 0])),
  untyped: 0,
  slow: 0,
  overSlowOnce: 0,
  pollution: 0,
  roundTripMismatch: 0,
  maxCallMs: 0,
  maxCallTarget: '',
  maxInputMs: 0,
  bytes: 0,
}
const saved = new Set()
const findings = []
function finding(kind, target, bytes, detail) {
  const h = createHash('sha1').update(bytes).digest('hex').slice(0, 12)
  const id = `${target}--found-${kind}-${h}`
  if (saved.has(id)) return
  saved.add(id)
  findings.push({ id, kind, target, detail: String(detail).slice(0, 300), bytes: bytes.length })
  console.log(`FINDING ${id}: ${String(detail).slice(0, 300)}`)
  if (save && saved.size <= 200) {
    if (bytes.length <= 4096) writeFileSync(join(here, 'corpus', id + '.hex'), toHex(bytes) + '\n')
    else writeFileSync(join(here, 'corpus', id + '.bin'), bytes)
  }
}

const protoBefore = prototypeSnapshot()
const heap = []
const sampleHeap = () => {
  if (gc) gc()
  heap.push(process.memoryUsage().heapUsed)
}
sampleHeap()
const r = rng(seed)
const startMs = performance.now()
const deadline = startMs + minutes * 60_000
let nextHeapAt = startMs + 5_000
let nextReportAt = startMs + 60_000
const entryTemplate = (value) => encodeEntry({ stream: 'f/0', seq: 1, time: 1, site: 'f', deps: [['a/0', 1]], ops: [{ key: 'k', value, supersedes: [{ time: 1, site: 'a' }] }] })

function feed(bytes, only) {
  let total = 0
  for (const name of only ?? TARGET_NAMES) {
    const input = prepare(m, name, bytes)
    const t0 = performance.now()
    const out = runPrepared(m, targets, name, input)
    const ms = performance.now() - t0
    total += ms
    stats.calls[name]++
    if (ms > stats.maxCallMs) (stats.maxCallMs = ms), (stats.maxCallTarget = name)
    if (out === 'ok') {
      stats.accepted[name]++
      if (name === 'decodeValue') {
        // Oracle: an accepted value re-encodes and decodes to the same thing.
        const v = decodeValue(bytes)
        const again = decodeValue(encodeValue(v, 1 << 22))
        if (!sameValue(v, again)) (stats.roundTripMismatch++, finding('roundtrip', name, bytes, 'accepted value does not round-trip'))
      }
    } else if (out !== 'rejected') {
      stats.untyped++
      finding('untyped', name, bytes, out && out.stack ? out.stack.split('\n').slice(0, 3).join(' | ') : out)
    }
    if (ms > slowMs) {
      stats.overSlowOnce++
      // Confirm: the machine is shared, so a GC pause or a preempted core must not count.
      let best = ms
      for (let i = 0; i < 3 && best > slowMs; i++) {
        const t1 = performance.now()
        runPrepared(m, targets, name, input)
        best = Math.min(best, performance.now() - t1)
      }
      if (best > slowMs) (stats.slow++, finding('slow', name, bytes, `${best.toFixed(1)} ms (best of 4)`))
    }
    if (quickPolluted()) {
      stats.pollution++
      finding('pollution', name, bytes, 'an enumerable property appeared on Object.prototype or Array.prototype')
      for (const k in {}) delete Object.prototype[k]
      for (const k in []) delete Array.prototype[k]
    }
  }
  if (total > stats.maxInputMs) stats.maxInputMs = total
  stats.inputs++
  stats.bytes += bytes.length
}
function sameValue(a, b) {
  if (a === b) return true
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime()
  if (a instanceof Uint8Array) return b instanceof Uint8Array && Buffer.compare(a, b) === 0
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]))
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameValue(a[k], b[k]))
  }
  return Number.isNaN(a) && Number.isNaN(b)
}

while (true) {
  for (let batch = 0; batch < 200; batch++) {
    const kind = kinds[int(r, kinds.length)]
    const list = corpus[kind]
    const s = list[int(r, list.length)]
    const other = corpus[kinds[int(r, kinds.length)]]
    let b
    if (r() < 0.05) b = Uint8Array.from({ length: int(r, 256) }, () => int(r, 256))
    else b = mutate(r, s, other[int(r, other.length)])
    feed(b)
    // Reach the inner decoders through their containers: a mutated value inside a valid entry,
    // a mutated entry inside a valid writes frame.
    if (kind === 'value' && b.length <= 1 << 20) feed(entryTemplate(b), ['decodeEntry'])
    else if (kind === 'entry') feed(encodeFrame({ t: 'writes', e: [b] }), ['decodeFrame'])
  }
  const now = performance.now()
  if (stats.inputs % 10_000 < 400 && prototypeSnapshot() !== protoBefore) {
    stats.pollution++
    finding('pollution', 'unknown', new Uint8Array(0), 'a built-in prototype gained or lost an own property')
  }
  if (now >= nextHeapAt) {
    sampleHeap()
    nextHeapAt = now + 5_000
  }
  if (now >= nextReportAt) {
    nextReportAt = now + 60_000
    const s = (now - startMs) / 1000
    console.log(`${(s / 60).toFixed(1)} min: ${stats.inputs.toLocaleString('en')} inputs (${Math.round(stats.inputs / s).toLocaleString('en')}/s), untyped ${stats.untyped}, slow ${stats.slow}, pollution ${stats.pollution}, heap ${(heap.at(-1) / 1048576).toFixed(1)} MiB`)
  }
  if (now >= deadline) break
}
sampleHeap()
const elapsedS = (performance.now() - startMs) / 1000
if (prototypeSnapshot() !== protoBefore) stats.pollution++
const mib = (x) => (x / 1048576).toFixed(1)
const firstMinute = heap.slice(0, 13)
const lastMinute = heap.slice(-13)
const avg = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
console.log('')
console.log(`inputs run          ${stats.inputs.toLocaleString('en')} in ${(elapsedS / 60).toFixed(1)} min (${Math.round(stats.inputs / elapsedS).toLocaleString('en')} inputs/s, ${mib(stats.bytes)} MiB)`)
console.log(`decoder calls       ${TARGET_NAMES.map((n) => `${n} ${stats.calls[n].toLocaleString('en')} (${stats.accepted[n].toLocaleString('en')} accepted)`).join(', ')}`)
console.log(`untyped exceptions  ${stats.untyped}`)
console.log(`inputs over ${slowMs} ms  ${stats.slow} (confirmed: best of 4 runs; ${stats.overSlowOnce} single runs over it, not reproduced); max single call ${stats.maxCallMs.toFixed(2)} ms (${stats.maxCallTarget}), max per input over all decoders ${stats.maxInputMs.toFixed(2)} ms`)
console.log(`heap after gc       start ${mib(heap[0])} MiB, end ${mib(heap.at(-1))} MiB, min ${mib(Math.min(...heap))}, max ${mib(Math.max(...heap))} MiB; first-minute avg ${mib(avg(firstMinute))}, last-minute avg ${mib(avg(lastMinute))} MiB (${heap.length} samples${gc ? '' : ', no --expose-gc'})`)
console.log(`prototype pollution ${stats.pollution}`)
console.log(`round-trip mismatch ${stats.roundTripMismatch}`)
console.log(`findings saved      ${findings.length}${save ? ' (test/fuzz/corpus/)' : ' (--no-save)'}`)
console.log(JSON.stringify({ seed, minutes, elapsedS: Math.round(elapsedS), ...stats, heapStartMiB: Number(mib(heap[0])), heapEndMiB: Number(mib(heap.at(-1))), heapMaxMiB: Number(mib(Math.max(...heap))), findings }))
process.exit(stats.untyped + stats.slow + stats.pollution + stats.roundTripMismatch > 0 ? 1 : 0)
