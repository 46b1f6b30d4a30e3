import { assertValue, decodeStored } from './codec.js'
import { CausewayError } from './errors.js'
import type { ConflictMode, ConflictSpec, Entry, MergeFunction, NamedMerge, Value, Version } from './types.js'
import { compareVersions } from './types.js'
import type { Dot, StreamId } from './context.js'

/**
 * One concurrent version of a key as stored: Lamport version, the write's dot (stream, seq) and the
 * encoded value (`undefined` = tombstone).
 */
export interface Sibling {
  time: number
  site: string
  stream: StreamId
  seq: number
  value: Uint8Array | undefined
}

/** A key's state: its concurrent siblings, highest version first. Empty = never written here. */
export type KeyState = Sibling[]

export function versionOf(s: Sibling): Version {
  return { time: s.time, site: s.site }
}

function cmpSib(a: Sibling, b: Sibling): number {
  return compareVersions(versionOf(b), versionOf(a))
}

export type Resolver = (key: string) => ConflictMode

/**
 * Keys under this prefix keep concurrent values as siblings ('return-all') at every site, whatever
 * its `conflicts` option says. The mode is part of the key, as an object's type is part of its
 * identity in AntidoteDB, so that no site can store such a key differently: not a site configured
 * otherwise, not a relay that never runs the application, not one that receives the first writes
 * before the application registers anything. Meant for data that merges its siblings itself (the
 * ORM's per-column rows): convergence then needs no configuration at all.
 */
export const SIBLINGS_PREFIX = '~siblings/'

export function validateConflicts(opt: unknown): Resolver {
  const configured = validateConfigured(opt)
  return (key) => (key.startsWith(SIBLINGS_PREFIX) ? 'return-all' : configured(key))
}

/** A merge function with a stable identity for configuration agreement: `{ merge, id: 'my-merge-v1' }`. */
function isNamedMerge(m: unknown): m is NamedMerge {
  if (typeof m !== 'object' || m === null) return false
  const o = m as Record<string, unknown>
  return typeof o.merge === 'function' && typeof o.id === 'string' && o.id.length > 0 && o.id.length <= 128 && Object.keys(o).every((k) => k === 'merge' || k === 'id')
}

function isSpec(m: unknown): m is ConflictSpec {
  return m === 'lww' || m === 'return-all' || typeof m === 'function' || isNamedMerge(m)
}

function unwrap(m: ConflictSpec): ConflictMode {
  return isNamedMerge(m) ? m.merge : m
}

/** How a mode is named when sites compare configurations: a merge function by its id, else its `name`. */
function specId(m: ConflictSpec): string {
  if (m === 'lww' || m === 'return-all') return m
  if (isNamedMerge(m)) return `merge:${m.id}`
  return `merge:${m.name}`
}

/**
 * A canonical description of a validated `conflicts` option (default mode, then prefix rules in
 * key order), what configuration agreement (config.ts) digests. Throws like validateConflicts.
 */
export function describeConflicts(opt: unknown): string {
  const { def, prefixes } = parseConflicts(opt)
  const rules = prefixes.map(([p, m]) => [p, specId(m)]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0))
  return JSON.stringify({ default: specId(def), prefixes: rules, reserved: SIBLINGS_PREFIX })
}

function parseConflicts(opt: unknown): { def: ConflictSpec; prefixes: Array<[string, ConflictSpec]> } {
  if (opt === undefined) return { def: 'lww', prefixes: [] }
  if (isSpec(opt)) return { def: opt, prefixes: [] }
  if (typeof opt !== 'object' || opt === null) throw new CausewayError('INVALID_OPTIONS', "conflicts must be 'lww', 'return-all', a merge function, { merge, id } or { default, prefixes }")
  const o = opt as { default?: unknown; prefixes?: unknown }
  for (const k of Object.keys(o)) {
    if (k !== 'default' && k !== 'prefixes') throw new CausewayError('INVALID_OPTIONS', `conflicts has an unknown field '${k}'`)
  }
  const def = o.default ?? 'lww'
  if (!isSpec(def)) throw new CausewayError('INVALID_OPTIONS', 'conflicts.default is not a conflict mode')
  const prefixes: Array<[string, ConflictSpec]> = []
  if (o.prefixes !== undefined) {
    if (typeof o.prefixes !== 'object' || o.prefixes === null) throw new CausewayError('INVALID_OPTIONS', 'conflicts.prefixes must be an object')
    for (const [p, m] of Object.entries(o.prefixes)) {
      if (!isSpec(m)) throw new CausewayError('INVALID_OPTIONS', `conflicts.prefixes['${p}'] is not a conflict mode`)
      if (p.startsWith(SIBLINGS_PREFIX)) throw new CausewayError('INVALID_OPTIONS', `conflicts.prefixes['${p}']: keys under '${SIBLINGS_PREFIX}' always keep siblings; they cannot be configured`)
      prefixes.push([p, m])
    }
  }
  return { def, prefixes }
}

function validateConfigured(opt: unknown): Resolver {
  const parsed = parseConflicts(opt)
  const def = unwrap(parsed.def)
  const prefixes: Array<[string, ConflictMode]> = parsed.prefixes.map(([p, m]) => [p, unwrap(m)])
  if (prefixes.length === 0) return () => def
  // Longest prefix wins.
  prefixes.sort((a, b) => b[0].length - a[0].length)
  return (key) => {
    for (const [p, m] of prefixes) if (key.startsWith(p)) return m
    return def
  }
}

export interface IncomingWrite {
  time: number
  site: string
  stream: StreamId
  seq: number
  value: Uint8Array | undefined
  /** Versions of this key the writing session had observed: exactly these are superseded. */
  supersedes: Version[]
}

/**
 * Apply a write to a key's state. Pure; returns the same array object when nothing changes
 * (a duplicate, or a write an LWW winner already dominates). Commutative for concurrent writes,
 * which is what makes sites converge whatever the delivery order.
 */
export function applyToState(state: KeyState, w: IncomingWrite, mode: ConflictMode): KeyState {
  for (const s of state) if (s.time === w.time && s.site === w.site) return state // duplicate
  const sib: Sibling = { time: w.time, site: w.site, stream: w.stream, seq: w.seq, value: w.value }
  if (mode === 'lww') {
    // Only the highest version matters for LWW; older ones are garbage the moment they lose.
    if (state.length > 0 && cmpSib(sib, state[0]!) > 0) return state
    return [sib]
  }
  const next = state.filter((s) => !w.supersedes.some((v) => v.time === s.time && v.site === s.site))
  next.push(sib)
  next.sort(cmpSib)
  return next
}

/** What `get` returns for a state, or undefined when no live value remains. */
export function viewOf(key: string, state: KeyState, mode: ConflictMode): Entry | undefined {
  const live = state.filter((s) => s.value !== undefined)
  if (live.length === 0) return undefined
  const winner = live[0]!
  if (mode === 'lww') return { key, value: decodeStored(winner.value!), version: versionOf(winner) }
  if (mode === 'return-all') {
    const e: Entry = { key, value: decodeStored(winner.value!), version: versionOf(winner) }
    if (live.length > 1) e.siblings = live.map((s) => ({ value: decodeStored(s.value!), version: versionOf(s) }))
    return e
  }
  return { key, value: mergeValues(live, mode), version: versionOf(winner) }
}

function mergeValues(live: Sibling[], merge: MergeFunction): Value {
  // Fold oldest to newest; the laws make the order irrelevant, a fixed order makes bugs reproducible.
  let acc = decodeStored(live[live.length - 1]!.value!)
  for (let i = live.length - 2; i >= 0; i--) {
    let out: Value
    try {
      out = merge(acc, decodeStored(live[i]!.value!))
      assertValue(out)
    } catch (e) {
      throw new CausewayError('MERGE_FAILED', 'the merge function threw or returned a non-Value', { cause: e })
    }
    acc = out
  }
  return acc
}

/** The versions and dots a session observes when it reads this state. */
export function observationOf(state: KeyState): { versions: Version[]; dots: Dot[] } {
  return { versions: state.map(versionOf), dots: state.map((s) => [s.stream, s.seq] as Dot) }
}

// --- storage encoding of key states: [[time, site, stream, seq, value|null], ...]

export function stateToWire(state: KeyState): unknown[] {
  return state.map((s) => [s.time, s.site, s.stream, s.seq, s.value ?? null])
}

export function stateFromWire(x: unknown): KeyState {
  if (!Array.isArray(x)) throw new CausewayError('STORAGE_ERROR', 'corrupt key state')
  return x.map((r) => {
    if (!Array.isArray(r) || r.length !== 5) throw new CausewayError('STORAGE_ERROR', 'corrupt key state')
    const v = r[4]
    return { time: r[0], site: r[1], stream: r[2], seq: r[3], value: v === null ? undefined : v instanceof Uint8Array ? v : undefined }
  })
}
