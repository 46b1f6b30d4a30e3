/**
 * Causal-consistency checker (after Bouajjani, Enea, Guerraoui, Hamza: "On verifying causal
 * consistency", POPL'17), specialised to Causeway's LWW / return-all keys.
 *
 * Events: every recorded operation is one event; so = call order per session id; wr = from the
 * write whose (key, version) — or else (key, value) — a read returned, to the reading event (a
 * getMany is one event, so its reads are one snapshot); co = (so ∪ wr)+, computed with per-session
 * vector clocks in topological order. A delete is a write of "absent"; absent reads add no wr edge.
 *
 * Violations:
 * - ThinAirRead: a read returned a value (or version) no recorded write produced.
 * - CyclicCO: co has a cycle (e.g. a read saw a write from its own session's future).
 * - WriteCORead: a read returned w1 although a write w2 to the key has w1 co< w2 co< read (lww);
 *   return-all: a returned sibling was superseded by a write co-before the read (a write supersedes
 *   what its session last observed of the key: its last read's siblings, or its own last write), or
 *   a put co-before the read is neither returned nor possibly superseded.
 * - WriteCOInitRead: a read returned absent although a put is co-before it and no delete can explain
 *   it (lww: a delete not co-after the read with a higher version than the co-prior puts; return-all:
 *   every co-prior put must be co-before some write not co-after the read).
 * - CyclicCF: the LWW order (compareVersions) contradicts co: a write co-before another write of the
 *   same key with a version not smaller, or an lww read returning w1 while a write with a higher
 *   version is co-before the read.
 * - Divergence: the final reads of different sites disagree (winner value, version, sibling set).
 * - FinalState (with `complete: true`): a final read does not reflect the whole history: lww keys
 *   must show the highest version written (absent if it is a delete); return-all keys must show
 *   every put no write is co-after, and no put that a write superseded.
 *
 * The checker is deliberately lenient where the history cannot prove a violation (writes concurrent
 * with a read may or may not be visible), so a reported violation is a real one.
 */
import type {
  CheckOptions,
  CheckResult,
  CheckerConflictMode,
  Entry,
  History,
  HistoryOp,
  Value,
  Version,
  Violation,
  ViolationKind,
} from './types.js'

/** Same order as @causeway/core's compareVersions (kept local: the checker has no runtime deps). */
export function compareVersions(a: Version, b: Version): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1
  if (a.site === b.site) return 0
  return a.site < b.site ? -1 : 1
}

/** Canonical text of a Value: equal values, equal strings (object keys sorted). */
export function canonicalValue(v: Value): string {
  if (v === null) return 'null'
  switch (typeof v) {
    case 'boolean':
    case 'number':
      return String(v)
    case 'string':
      return JSON.stringify(v)
  }
  if (v instanceof Uint8Array) return `b'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}'`
  if (v instanceof Date) return `d'${v.getTime()}'`
  if (Array.isArray(v)) return `[${v.map(canonicalValue).join(',')}]`
  const o = v as { [k: string]: Value }
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalValue(o[k]!)}`)
    .join(',')}}`
}

const vkey = (v: Version): string => `${v.time}@${v.site}`
const short = (s: string): string => (s.length > 60 ? `${s.slice(0, 57)}...` : s)

interface W {
  ev: number
  key: string
  put: boolean
  canon: string | undefined
  version: Version | undefined
  /** What the writing session last observed of the key (return-all supersession). */
  obs: W[]
}

interface R {
  ev: number
  key: string
  /** Resolved writes returned (winner first); empty = absent. */
  observed: W[]
}

interface KeyIndex {
  writes: W[]
  /** Per session index: that session's writes to the key, in session order. */
  bySess: Map<number, W[]>
  /** Deletes, highest version first (lww absent-read justification). */
  deletesDesc: W[] | undefined
  /** Writes that superseded a given write (return-all), filled lazily. */
  supersededBy: Map<W, W[]>
}

class Sink {
  readonly violations: Violation[] = []
  readonly counts: Record<ViolationKind, number> = {
    CyclicCO: 0,
    WriteCOInitRead: 0,
    ThinAirRead: 0,
    WriteCORead: 0,
    CyclicCF: 0,
    Divergence: 0,
    FinalState: 0,
  }
  constructor(private readonly max: number) {}
  add(kind: ViolationKind, detail: string): void {
    this.counts[kind]++
    if (this.violations.length < this.max) this.violations.push({ kind, detail })
  }
}

function modeResolver(opt: CheckOptions['conflicts'], siblingKeys: Set<string>): (key: string) => CheckerConflictMode {
  if (opt === undefined) return (key) => (siblingKeys.has(key) ? 'return-all' : 'lww')
  if (typeof opt === 'function') return opt
  if (opt === 'lww' || opt === 'return-all') return () => opt
  const def = opt.default ?? 'lww'
  const prefixes = Object.entries(opt.prefixes ?? {}).sort((a, b) => b[0].length - a[0].length)
  for (const [, m] of prefixes) {
    if (m !== 'lww' && m !== 'return-all') throw new TypeError('the checker supports only lww and return-all keys')
  }
  return (key) => {
    for (const [p, m] of prefixes) if (key.startsWith(p)) return m
    return def
  }
}

/** Last element of `list` (sorted by pos) with pos < bound, or undefined. */
function lastBefore(list: W[], pos: Int32Array, bound: number): W | undefined {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (pos[list[mid]!.ev]! < bound) lo = mid + 1
    else hi = mid
  }
  return lo === 0 ? undefined : list[lo - 1]
}

export function checkHistory(history: History | readonly HistoryOp[], options: CheckOptions = {}): CheckResult {
  const ops: readonly HistoryOp[] = Array.isArray(history) ? history : (history as History).ops
  const sink = new Sink(options.maxViolations ?? 1000)

  // ---- 1. events, sessions, writes --------------------------------------------------------------
  const sessIndex = new Map<string, number>()
  const sessEvents: number[][] = []
  const E = ops.length
  const evSess = new Int32Array(E)
  const pos = new Int32Array(E)
  const evDesc: string[] = new Array(E)
  const evWrites: W[][] = new Array(E)
  const evReads: R[][] = new Array(E)
  const keys = new Map<string, KeyIndex>()
  const byVersion = new Map<string, W>()
  const byValue = new Map<string, W[]>()
  const siblingKeys = new Set<string>()
  let nWrites = 0
  let nReads = 0

  const keyIndex = (key: string): KeyIndex => {
    let k = keys.get(key)
    if (k === undefined) keys.set(key, (k = { writes: [], bySess: new Map(), deletesDesc: undefined, supersededBy: new Map() }))
    return k
  }
  const addWrite = (ev: number, key: string, value: Value | undefined, isPut: boolean, version: Version | undefined): void => {
    const canon = isPut ? canonicalValue(value as Value) : undefined
    const w: W = { ev, key, put: isPut, canon, version, obs: [] }
    const ki = keyIndex(key)
    ki.writes.push(w)
    let list = ki.bySess.get(evSess[ev]!)
    if (list === undefined) ki.bySess.set(evSess[ev]!, (list = []))
    list.push(w)
    if (version !== undefined) byVersion.set(`${key}\u0000${vkey(version)}`, w)
    if (canon !== undefined) {
      const vk = `${key}\u0000${canon}`
      const l = byValue.get(vk)
      if (l === undefined) byValue.set(vk, [w])
      else l.push(w)
    }
    evWrites[ev]!.push(w)
    nWrites++
  }

  for (let ev = 0; ev < E; ev++) {
    const op = ops[ev]!
    let s = sessIndex.get(op.session)
    if (s === undefined) {
      s = sessEvents.length
      sessIndex.set(op.session, s)
      sessEvents.push([])
    }
    evSess[ev] = s
    pos[ev] = sessEvents[s]!.length
    sessEvents[s]!.push(ev)
    evWrites[ev] = []
    evReads[ev] = []
    const where = `${op.session}@${op.site}#${pos[ev]}`
    switch (op.kind) {
      case 'put':
        evDesc[ev] = `${where} put(${op.key}=${short(canonicalValue(op.value))}${op.version ? ` v${vkey(op.version)}` : ''})`
        addWrite(ev, op.key, op.value, true, op.version)
        break
      case 'delete':
        evDesc[ev] = `${where} delete(${op.key}${op.version ? ` v${vkey(op.version)}` : ''})`
        addWrite(ev, op.key, undefined, false, op.version)
        break
      case 'write':
        evDesc[ev] = `${where} write(${op.ops.map((o) => o.key).join(',')}${op.version ? ` v${vkey(op.version)}` : ''})`
        for (const o of op.ops) addWrite(ev, o.key, 'delete' in o ? undefined : o.value, !('delete' in o), op.version)
        break
      case 'get':
        evDesc[ev] = `${where} get(${op.key})`
        if (op.result?.siblings && op.result.siblings.length > 1) siblingKeys.add(op.key)
        break
      case 'getMany':
        evDesc[ev] = `${where} getMany(${[...(op.keys ?? op.result.keys())].join(',')})`
        for (const [k, e] of op.result) if (e.siblings && e.siblings.length > 1) siblingKeys.add(k)
        break
    }
  }
  const S = sessEvents.length
  const modeOf = modeResolver(options.conflicts, siblingKeys)

  // ---- 2. resolve reads (wr) --------------------------------------------------------------------
  const resolve = (key: string, value: Value, version: Version | undefined): W | string => {
    const canon = canonicalValue(value)
    if (version !== undefined) {
      const w = byVersion.get(`${key}\u0000${vkey(version)}`)
      if (w !== undefined) {
        if (!w.put) return `returned ${short(canon)} with the version ${vkey(version)} of a delete`
        if (w.canon !== canon) return `returned ${short(canon)} but version ${vkey(version)} wrote ${short(w.canon!)}`
        return w
      }
    }
    const cands = byValue.get(`${key}\u0000${canon}`)
    if (cands === undefined) return `returned ${short(canon)}${version ? ` v${vkey(version)}` : ''}, which no write of ${key} wrote`
    const fit = cands.filter((w) => version === undefined || w.version === undefined || vkey(w.version) === vkey(version))
    if (fit.length === 0) return `returned ${short(canon)} v${vkey(version!)} but that value was written with another version`
    if (fit.length > 1) throw new Error(`checker: ambiguous history: ${fit.length} writes of ${short(canon)} to ${key} (values must be unique, or record versions)`)
    return fit[0]!
  }
  const readEntry = (ev: number, key: string, entry: Entry | undefined): void => {
    nReads++
    const r: R = { ev, key, observed: [] }
    if (entry !== undefined) {
      const parts =
        modeOf(key) === 'return-all' && entry.siblings && entry.siblings.length > 0
          ? entry.siblings
          : [{ value: entry.value, version: entry.version }]
      for (const p of parts) {
        const w = resolve(key, p.value, p.version)
        if (typeof w === 'string') sink.add('ThinAirRead', `${evDesc[ev]}: ${w}`)
        else if (!r.observed.includes(w)) r.observed.push(w)
      }
      // A read whose every value is from thin air carries no information: do not treat it as absent.
      if (r.observed.length === 0) return
    }
    evReads[ev]!.push(r)
  }
  for (let ev = 0; ev < E; ev++) {
    const op = ops[ev]!
    if (op.kind === 'get') readEntry(ev, op.key, op.result)
    else if (op.kind === 'getMany') {
      const asked = op.keys ?? [...op.result.keys()]
      for (const k of new Set(asked)) readEntry(ev, k, op.result.get(k))
      for (const k of op.result.keys()) if (op.keys && !op.keys.includes(k)) readEntry(ev, k, op.result.get(k))
    }
  }

  // What each write's session last observed of its key (return-all supersession, per the API).
  const observedLimit = options.observedKeysLimit ?? 256
  for (const events of sessEvents) {
    const last = new Map<string, W[]>()
    // Like the engine's context: a bounded, recency-ordered map; an evicted key supersedes nothing.
    const touch = (key: string, obs: W[]): void => {
      last.delete(key)
      last.set(key, obs)
      if (last.size > observedLimit) last.delete(last.keys().next().value as string)
    }
    for (const ev of events) {
      for (const w of evWrites[ev]!) {
        w.obs = last.get(w.key) ?? []
        for (const o of w.obs) {
          const ki = keys.get(w.key)!
          let l = ki.supersededBy.get(o)
          if (l === undefined) ki.supersededBy.set(o, (l = []))
          l.push(w)
        }
      }
      for (const w of evWrites[ev]!) touch(w.key, [w])
      for (const r of evReads[ev]!) touch(r.key, r.observed)
    }
  }

  // ---- 3. co: topological order + vector clocks -------------------------------------------------
  const preds: number[][] = new Array(E)
  for (let ev = 0; ev < E; ev++) {
    const p: number[] = []
    if (pos[ev]! > 0) p.push(sessEvents[evSess[ev]!]![pos[ev]! - 1]!)
    for (const r of evReads[ev]!) for (const w of r.observed) if (w.ev !== ev && !p.includes(w.ev)) p.push(w.ev)
    preds[ev] = p
  }
  const succs: number[][] = Array.from({ length: E }, () => [])
  const indeg = new Int32Array(E)
  for (let ev = 0; ev < E; ev++) {
    for (const p of preds[ev]!) succs[p]!.push(ev)
    indeg[ev] = preds[ev]!.length
  }
  if (E * S > 200_000_000) throw new Error(`checker: history too large (${E} events x ${S} sessions)`)
  const vc = new Int32Array(E * S)
  const queue: number[] = []
  for (let ev = 0; ev < E; ev++) if (indeg[ev] === 0) queue.push(ev)
  let done = 0
  for (let qi = 0; qi < queue.length; qi++) {
    const ev = queue[qi]!
    done++
    const row = ev * S
    for (const p of preds[ev]!) {
      const prow = p * S
      for (let s = 0; s < S; s++) if (vc[prow + s]! > vc[row + s]!) vc[row + s] = vc[prow + s]!
    }
    vc[row + evSess[ev]!] = pos[ev]! + 1
    for (const n of succs[ev]!) if (--indeg[n] === 0) queue.push(n)
  }
  const stats = { events: E, sessions: S, writes: nWrites, reads: nReads }
  if (done < E) {
    // Every event left has a predecessor left: walk predecessors until one repeats.
    const left = new Uint8Array(E)
    for (let ev = 0; ev < E; ev++) if (indeg[ev]! > 0) left[ev] = 1
    let u = indeg.findIndex((d) => d > 0)
    const seenAt = new Map<number, number>()
    const path: number[] = []
    while (!seenAt.has(u)) {
      seenAt.set(u, path.length)
      path.push(u)
      u = preds[u]!.find((p) => left[p] === 1)!
    }
    const cycle = path.slice(seenAt.get(u)!).reverse()
    sink.add('CyclicCO', `causal order has a cycle: ${cycle.slice(0, 12).map((e) => evDesc[e]).join(' -> ')}${cycle.length > 12 ? ' -> ...' : ''}`)
    return { ok: false, violations: sink.violations, counts: sink.counts, stats }
  }
  /** a co-before b (strict). */
  const co = (a: number, b: number): boolean => a !== b && vc[b * S + evSess[a]!]! > pos[a]!
  /** Per session, the latest write to the key strictly co-before event ev. */
  const candidates = (ki: KeyIndex, ev: number): W[] => {
    const out: W[] = []
    for (const [s, list] of ki.bySess) {
      const bound = s === evSess[ev] ? pos[ev]! : vc[ev * S + s]!
      const w = lastBefore(list, pos, bound)
      if (w !== undefined) out.push(w)
    }
    return out
  }
  /** Could c be superseded by a write that is not co-after the read (so possibly visible to it)? */
  /** Per session writing the key, the first of its writes co-after c (co is monotone along a session). */
  const firstCoAfter = (ki: KeyIndex, c: W): W[] => {
    const cs = evSess[c.ev]!
    const cp = pos[c.ev]!
    const out: W[] = []
    for (const list of ki.bySess.values()) {
      let lo = 0
      let hi = list.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        const x = list[mid]!
        if (x.ev !== c.ev && vc[x.ev * S + cs]! > cp) hi = mid
        else lo = mid + 1
      }
      if (lo < list.length) out.push(list[lo]!)
    }
    return out
  }
  /** Could c be superseded by a write that is not co-after the read (so possibly visible to it)? */
  const possiblySuperseded = (ki: KeyIndex, c: W, rev: number): boolean => firstCoAfter(ki, c).some((x) => !co(rev, x.ev))
  const wdesc = (w: W): string => {
    const d = evDesc[w.ev]!
    return evWrites[w.ev]!.length > 1 ? `${d}[${w.key}]` : d
  }

  // ---- 4. reads -----------------------------------------------------------------------------------
  for (let ev = 0; ev < E; ev++) {
    for (const r of evReads[ev]!) {
      const ki = keys.get(r.key)
      if (ki === undefined) continue // never written: absent is the initial value
      const cands = candidates(ki, ev)
      const what = `${evDesc[ev]} -> ${r.observed.length === 0 ? 'absent' : r.observed.map((w) => short(w.canon!)).join(' | ')}`
      if (modeOf(r.key) === 'lww') {
        if (r.observed.length === 0) {
          let maxPut: Version | undefined
          for (const c of cands) if (c.put && c.version && (!maxPut || compareVersions(c.version, maxPut) > 0)) maxPut = c.version
          const put = cands.find((c) => c.put)
          if (put === undefined) continue
          if (ki.deletesDesc === undefined) {
            ki.deletesDesc = ki.writes.filter((w) => !w.put && w.version).sort((a, b) => compareVersions(b.version!, a.version!))
          }
          let explained = false
          for (const d of ki.deletesDesc) {
            if (maxPut && compareVersions(d.version!, maxPut) <= 0) break
            if (!co(ev, d.ev)) {
              explained = true
              break
            }
          }
          // Without versions, any delete not co-after the read may explain it (lenient).
          if (!explained && !maxPut) explained = ki.writes.some((w) => !w.put && !co(ev, w.ev))
          if (!explained) sink.add('WriteCOInitRead', `${what}, but ${wdesc(put)} is co-before the read and no later delete explains it`)
          continue
        }
        const w1 = r.observed[0]!
        let flagged = false
        for (const c of cands) {
          if (c === w1) continue
          if (co(w1.ev, c.ev)) {
            sink.add('WriteCORead', `${what}, but ${wdesc(w1)} co< ${wdesc(c)} co< read`)
            flagged = true
            break
          }
        }
        if (flagged || !w1.version) continue
        for (const c of cands) {
          if (c !== w1 && c.version && compareVersions(c.version, w1.version) > 0) {
            sink.add('CyclicCF', `${what} (v${vkey(w1.version)}), but ${wdesc(c)} with a higher version is co-before the read`)
            break
          }
        }
        continue
      }
      // return-all
      let flagged = false
      for (const s of r.observed) {
        const sup = ki.supersededBy.get(s)?.find((x) => co(x.ev, ev))
        if (sup !== undefined) {
          sink.add('WriteCORead', `${what}, but sibling ${wdesc(s)} was superseded by ${wdesc(sup)}, which is co-before the read`)
          flagged = true
          break
        }
      }
      if (flagged) continue
      for (const c of cands) {
        if (!c.put || r.observed.includes(c)) continue
        if (r.observed.some((s) => co(c.ev, s.ev))) continue
        if (possiblySuperseded(ki, c, ev)) continue
        const kind: ViolationKind = r.observed.length === 0 ? 'WriteCOInitRead' : 'WriteCORead'
        sink.add(kind, `${what}, but ${wdesc(c)} is co-before the read and was not superseded`)
        break
      }
    }
  }

  // ---- 5. arbitration (LWW version order) vs co, write-write ------------------------------------
  for (const ki of keys.values()) {
    for (const list of ki.bySess.values()) {
      for (let i = 1; i < list.length; i++) {
        const a = list[i - 1]!
        const b = list[i]!
        if (a.version && b.version && compareVersions(a.version, b.version) >= 0) {
          sink.add('CyclicCF', `${wdesc(a)} so< ${wdesc(b)} but the version is not greater`)
        }
      }
    }
    for (const w2 of ki.writes) {
      if (!w2.version) continue
      for (const [s, list] of ki.bySess) {
        if (s === evSess[w2.ev]) continue // covered by the so check above
        const w1 = lastBefore(list, pos, vc[w2.ev * S + s]!)
        if (w1 && w1.version && compareVersions(w1.version, w2.version) >= 0) {
          sink.add('CyclicCF', `${wdesc(w1)} co< ${wdesc(w2)} but the version is not greater`)
        }
      }
    }
  }

  // ---- 6. convergence ---------------------------------------------------------------------------
  if (options.finalReads !== undefined) {
    const allKeys = new Set<string>()
    for (const m of options.finalReads.values()) for (const k of m.keys()) allKeys.add(k)
    const describe = (e: Entry | undefined): string => {
      if (e === undefined) return 'absent'
      const sibs = e.siblings && e.siblings.length > 0 ? e.siblings : [{ value: e.value, version: e.version }]
      const set = sibs.map((s) => `${canonicalValue(s.value)}@${vkey(s.version)}`).sort()
      return `${canonicalValue(e.value)}@${vkey(e.version)}${modeOf(e.key) === 'return-all' && set.length > 1 ? ` {${set.join(', ')}}` : ''}`
    }
    // With every write delivered everywhere, the final state is determined by the history alone.
    const checkFinal = (key: string): void => {
      const ki = keys.get(key)
      for (const [site, m] of options.finalReads!) {
        if (!m.has(key)) continue
        const e = m.get(key)
        const where = `final read of ${key} at ${site} -> ${e === undefined ? 'absent' : short(canonicalValue(e.value))}`
        if (ki === undefined) {
          if (e !== undefined) sink.add('FinalState', `${where}, but ${key} was never written`)
          continue
        }
        if (modeOf(key) === 'lww') {
          let top: W | undefined
          for (const w of ki.writes) if (w.version && (!top || compareVersions(w.version, top.version!) > 0)) top = w
          if (top === undefined) continue
          const ok = top.put ? e !== undefined && canonicalValue(e.value) === top.canon && vkey(e.version) === vkey(top.version!) : e === undefined
          if (!ok) sink.add('FinalState', `${where}, but the highest version is ${wdesc(top)}`)
          continue
        }
        const got = new Set<W>()
        if (e !== undefined) {
          for (const sb of e.siblings && e.siblings.length > 0 ? e.siblings : [{ value: e.value, version: e.version }]) {
            const w = resolve(key, sb.value, sb.version)
            if (typeof w !== 'string') got.add(w)
          }
        }
        for (const w of got) {
          const sup = ki.supersededBy.get(w)
          if (sup !== undefined && sup.length > 0) sink.add('FinalState', `${where}, but ${wdesc(w)} was superseded by ${wdesc(sup[0]!)}`)
        }
        for (const w of ki.writes) {
          if (w.put && !got.has(w) && firstCoAfter(ki, w).length === 0) {
            sink.add('FinalState', `${where}, but ${wdesc(w)} is not superseded by any write and is missing`)
            break
          }
        }
      }
    }
    for (const key of [...allKeys].sort()) {
      const seen = new Map<string, string[]>()
      for (const [site, m] of options.finalReads) {
        if (!m.has(key)) continue
        const e = m.get(key)
        if (e !== undefined) {
          for (const s of e.siblings && e.siblings.length > 0 ? e.siblings : [{ value: e.value, version: e.version }]) {
            const w = resolve(key, s.value, s.version)
            if (typeof w === 'string') sink.add('ThinAirRead', `final read of ${key} at ${site}: ${w}`)
          }
        }
        const d = describe(e)
        const l = seen.get(d)
        if (l === undefined) seen.set(d, [site])
        else l.push(site)
      }
      if (options.complete) checkFinal(key)
      if (seen.size > 1) {
        sink.add('Divergence', `${key}: ${[...seen].map(([d, sites]) => `${sites.join(',')} -> ${short(d)}`).join('; ')}`)
      }
    }
  }

  return { ok: Object.values(sink.counts).every((n) => n === 0), violations: sink.violations, counts: sink.counts, stats }
}
