/**
 * The simulator's "disk": a memory-level database that survives a site's restart and can lose
 * power. Writes made without `sync` since the last synced one are undone by powerLoss(), the way
 * an OS page cache loses them; a synced write makes everything before it durable (fsync flushes
 * the whole file). A clear() counts as synced (undoing one would need a copy of the range).
 */
import { MemoryLevel } from 'memory-level'
import type { ShardDb } from '@causeway/core'

type Key = unknown
type Op = { type: 'put' | 'del'; key: Key; value?: unknown }
type Opts = { sync?: boolean } | undefined
/** The storage-layer methods abstract-level calls with encoded keys (not in memory-level's typings). */
interface Internals {
  _getSync(key: Key, options: object): unknown
  _put(key: Key, value: unknown, options: Opts): Promise<void>
  _del(key: Key, options: Opts): Promise<void>
  _batch(ops: Op[], options: Opts): Promise<void>
  _clear(options: object): Promise<void>
}

export interface SimDisk {
  readonly db: ShardDb
  /** Drops every write not covered by a synced one (call while the site is closed). Returns how many. */
  powerLoss(): Promise<number>
}

export function createSimDisk(): SimDisk {
  const level = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' })
  const inner = level as unknown as Internals
  const base = {
    put: inner._put.bind(level),
    del: inner._del.bind(level),
    batch: inner._batch.bind(level),
    clear: inner._clear.bind(level),
    getSync: inner._getSync.bind(level),
  }
  /** Prior values of keys written since the last synced write, oldest first. */
  let undo: Array<[Key, unknown]> = []
  const note = (options: Opts, keys: Key[]): void => {
    if (options?.sync === true) undo = []
    else for (const k of keys) undo.push([k, base.getSync(k, {})])
  }
  inner._put = (key, value, options) => (note(options, [key]), base.put(key, value, options))
  inner._del = (key, options) => (note(options, [key]), base.del(key, options))
  inner._batch = (ops, options) => (note(options, ops.map((o) => o.key)), base.batch(ops, options))
  inner._clear = (options) => ((undo = []), base.clear(options))
  return {
    db: level as unknown as ShardDb,
    async powerLoss() {
      const ops: Op[] = undo.reverse().map(([key, prior]) => (prior === undefined ? { type: 'del', key } : { type: 'put', key, value: prior }))
      undo = []
      if (ops.length > 0) await base.batch(ops, { sync: true })
      return ops.length
    },
  }
}
