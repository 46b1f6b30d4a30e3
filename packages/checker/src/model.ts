/**
 * A reference causal+ store for checker tests: replicas with causal delivery (a write is applied
 * only after every write its origin had applied), Lamport versions, LWW or return-all keys, and a
 * put/delete superseding exactly what its session last observed of the key (as in the API).
 * Driving it with random steps yields histories that are causally consistent by construction.
 */
import { createHistory } from './history.js'
import { compareVersions } from './check.js'
import type { CheckerConflictMode, Entry, History, SessionRecorder, Value, Version } from './types.js'

export interface CausalModelOptions {
  replicas: string[]
  /** Conflict mode per key (default lww). */
  modeOf?: (key: string) => CheckerConflictMode
}

interface MWrite {
  id: number
  origin: number
  seq: number
  key: string
  value: Value | undefined
  version: Version
  /** Origin's applied vector when written: the causal dependencies. */
  deps: number[]
  supersedes: Set<number>
}

interface Replica {
  id: string
  clock: number
  applied: number[]
  /** Per key: lww = [winner]; return-all = live writes (puts and tombstones). */
  state: Map<string, MWrite[]>
}

export interface CausalModel {
  readonly history: History
  /** A session pinned to a replica; its ops are recorded in the history. */
  session(replica: number, id: string): ModelSession
  /** Applies one pending write at `replica` if one is deliverable; returns whether it did. */
  deliverOne(replica: number, pick: (n: number) => number): boolean
  /** Delivers everything everywhere. */
  deliverAll(): void
  /** What a get of `key` returns at a replica (no recording). */
  peek(replica: number, key: string): Entry | undefined
}

export interface ModelSession {
  readonly recorder: SessionRecorder
  put(key: string, value: Value): Version
  delete(key: string): Version
  get(key: string): Entry | undefined
  getMany(keys: string[]): Map<string, Entry>
}

export function createCausalModel(options: CausalModelOptions): CausalModel {
  const modeOf = options.modeOf ?? (() => 'lww')
  const history = createHistory()
  const logs: MWrite[][] = options.replicas.map(() => [])
  const replicas: Replica[] = options.replicas.map((id) => ({
    id,
    clock: 0,
    applied: options.replicas.map(() => 0),
    state: new Map(),
  }))
  let nextId = 0

  const apply = (r: Replica, w: MWrite): void => {
    r.clock = Math.max(r.clock, w.version.time)
    r.applied[w.origin] = w.seq
    const cur = r.state.get(w.key) ?? []
    if (modeOf(w.key) === 'lww') {
      if (cur.length === 0 || compareVersions(w.version, cur[0]!.version) > 0) r.state.set(w.key, [w])
    } else {
      r.state.set(w.key, [...cur.filter((x) => !w.supersedes.has(x.id)), w])
    }
  }

  const entryOf = (r: Replica, key: string): Entry | undefined => {
    const live = (r.state.get(key) ?? []).filter((w) => w.value !== undefined)
    if (live.length === 0) return undefined
    live.sort((a, b) => compareVersions(b.version, a.version))
    const e: Entry = { key, value: live[0]!.value!, version: live[0]!.version }
    if (live.length > 1) e.siblings = live.map((w) => ({ value: w.value!, version: w.version }))
    return e
  }

  const observedIds = (e: Entry | undefined, r: Replica, key: string): number[] => {
    if (e === undefined) return []
    const byV = new Map((r.state.get(key) ?? []).map((w) => [`${w.version.time}@${w.version.site}`, w.id]))
    const vs = e.siblings ? e.siblings.map((s) => s.version) : [e.version]
    return vs.map((v) => byV.get(`${v.time}@${v.site}`)!)
  }

  const deliverable = (r: Replica, origin: number): MWrite | undefined => {
    const w = logs[origin]![r.applied[origin]!]
    if (w === undefined) return undefined
    for (let i = 0; i < w.deps.length; i++) if (i !== origin && r.applied[i]! < w.deps[i]!) return undefined
    return w
  }

  return {
    history,
    session(ri: number, id: string): ModelSession {
      const r = replicas[ri]!
      const recorder = history.session(r.id, id)
      const observed = new Map<string, number[]>()
      const write = (key: string, value: Value | undefined): Version => {
        const version = { time: ++r.clock, site: r.id }
        const origin = ri
        const w: MWrite = {
          id: nextId++,
          origin,
          seq: logs[origin]!.length + 1,
          key,
          value,
          version,
          deps: [...r.applied],
          supersedes: new Set(observed.get(key) ?? []),
        }
        logs[origin]!.push(w)
        apply(r, w)
        observed.set(key, [w.id])
        return version
      }
      return {
        recorder,
        put(key, value) {
          const v = write(key, value)
          recorder.recordPut(key, value, v)
          return v
        },
        delete(key) {
          const v = write(key, undefined)
          recorder.recordDelete(key, v)
          return v
        },
        get(key) {
          const e = entryOf(r, key)
          observed.set(key, observedIds(e, r, key))
          recorder.recordGet(key, e)
          return e
        },
        getMany(keys) {
          const m = new Map<string, Entry>()
          for (const k of keys) {
            const e = entryOf(r, k)
            observed.set(k, observedIds(e, r, k))
            if (e !== undefined) m.set(k, e)
          }
          recorder.recordGetMany(keys, m)
          return m
        },
      }
    },
    deliverOne(ri, pick) {
      const r = replicas[ri]!
      const ready: MWrite[] = []
      for (let o = 0; o < replicas.length; o++) {
        if (o === ri) continue
        const w = deliverable(r, o)
        if (w) ready.push(w)
      }
      if (ready.length === 0) return false
      apply(r, ready[pick(ready.length)]!)
      return true
    },
    deliverAll() {
      let progress = true
      while (progress) {
        progress = false
        for (let ri = 0; ri < replicas.length; ri++) while (this.deliverOne(ri, () => 0)) progress = true
      }
    },
    peek(ri, key) {
      return entryOf(replicas[ri]!, key)
    },
  }
}
