import type { Entry, History, HistoryOp, SessionRecorder, Value, Version, WriteSpec } from './types.js'

/** Shallow copies: an entry or map mutated by the test after recording must not rewrite history. */
function copyEntry(e: Entry | undefined): Entry | undefined {
  if (e === undefined) return undefined
  const out: Entry = { key: e.key, value: e.value, version: { ...e.version } }
  if (e.siblings !== undefined) out.siblings = e.siblings.map((s) => ({ value: s.value, version: { ...s.version } }))
  return out
}

export function createHistory(): History {
  const ops: HistoryOp[] = []
  const record = (op: HistoryOp): void => {
    ops.push(op)
  }
  const session = (site: string, id: string): SessionRecorder => {
    const base = { site, session: id }
    return {
      site,
      id,
      recordPut: (key: string, value: Value, version?: Version) =>
        record({ ...base, kind: 'put', key, value, ...(version ? { version: { ...version } } : {}) }),
      recordDelete: (key: string, version?: Version) =>
        record({ ...base, kind: 'delete', key, ...(version ? { version: { ...version } } : {}) }),
      recordWrite: (wops: WriteSpec[], version?: Version) =>
        record({ ...base, kind: 'write', ops: wops.map((o) => ({ ...o })), ...(version ? { version: { ...version } } : {}) }),
      recordGet: (key: string, result: Entry | undefined) => record({ ...base, kind: 'get', key, result: copyEntry(result) }),
      recordGetMany: (a: Iterable<string> | Map<string, Entry>, b?: Map<string, Entry>) => {
        const result = b ?? (a as Map<string, Entry>)
        const copy = new Map<string, Entry>()
        for (const [k, e] of result) copy.set(k, copyEntry(e)!)
        if (b === undefined) record({ ...base, kind: 'getMany', result: copy })
        else record({ ...base, kind: 'getMany', keys: [...(a as Iterable<string>)], result: copy })
      },
    }
  }
  return { ops, session, record }
}
