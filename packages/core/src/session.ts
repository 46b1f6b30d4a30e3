import type { ReadOptions, Session, WriteOp } from './api.js'
import type { Scopes } from './scopes.js'
import type { LamportClock } from './clock.js'
import { assertKey, encodeValue } from './codec.js'
import { observationOf, viewOf, type KeyState, type Resolver } from './conflict.js'
import type { CausalContext, Dot } from './context.js'
import { MAX_OPS_PER_WRITE, type WriteEntryOp } from './entry.js'
import { CausewayError } from './errors.js'
import { FRAME_OVERHEAD_BYTES, MAX_ENTRY_BYTES, MAX_REMOTE_READ_KEYS, MAX_REMOTE_READ_WAIT_MS, REMOTE_READ_WAIT_MS_DEFAULT } from './limits.js'
import type { Entry, Value, Version } from './types.js'

/** What a session needs from its site. */
export interface SessionHost {
  readonly id: string
  readonly clock: LamportClock
  readonly modeOf: Resolver
  readonly maxValueBytes: number
  /** Throws CLOSED (or the storage failure that stopped the site). */
  checkOpen(): void
  waitForDeps(deps: Dot[], waitMs: number): Promise<boolean>
  /** Origins of unmet dependencies that can never be met at this site (another deployment's token). */
  unknownOrigins(deps: Dot[]): string[]
  localWrite(ops: WriteEntryOp[], ctx: CausalContext): Promise<{ version: Version; dot: Dot }>
  readStates(keys: string[]): Promise<Map<string, KeyState>>
  readonly scopes: Scopes
  /** Read keys held elsewhere once `deps` are visible at a member (UNAVAILABLE after waitMs). */
  remoteRead(keys: string[], deps: Dot[], waitMs: number): Promise<Map<string, KeyState>>
}

/** A client session: its causal context, and operations run in call order. */
export class SessionImpl implements Session {
  private chain: Promise<unknown> = Promise.resolve()
  private verified: boolean
  /** After a remote read: how long the next operation may wait for what the value depended on. */
  private resumeWaitMs = 0

  constructor(private readonly site: SessionHost, private readonly ctx: CausalContext, continued: boolean, private readonly waitMs: number) {
    this.verified = !continued
    if (continued) site.clock.observe(ctx.maxTime)
  }

  /** Operations run in call order even when the caller does not await. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(async () => {
      if (!this.verified) {
        const waitMs = Math.max(this.waitMs, this.resumeWaitMs)
        const ok = await this.site.waitForDeps(this.ctx.depList(), waitMs)
        if (!ok) throw new CausewayError('CONTEXT_UNAVAILABLE', `the session's dependencies are not visible at site ${this.site.id} after ${waitMs} ms`, { details: { unknownOrigins: this.site.unknownOrigins(this.ctx.depList()) } })
        this.verified = true
        this.resumeWaitMs = 0
      }
      return fn()
    })
    this.chain = p.catch(() => {})
    return p
  }

  put(key: string, value: Value): Promise<Version> {
    let bytes: Uint8Array
    try {
      this.checkSite()
      assertKey(key)
      this.site.scopes.checkWrite(this.site.id, [key])
      bytes = encodeValue(value, this.maxValueBytes())
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(() => this.commit([{ key, value: bytes, supersedes: [] }]))
  }

  delete(key: string): Promise<Version> {
    try {
      this.checkSite()
      assertKey(key)
      this.site.scopes.checkWrite(this.site.id, [key])
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(() => this.commit([{ key, value: undefined, supersedes: [] }]))
  }

  write(ops: WriteOp[]): Promise<Version> {
    const prepared: WriteEntryOp[] = []
    try {
      this.checkSite()
      if (!Array.isArray(ops) || ops.length === 0) throw new CausewayError('INVALID_ARGUMENT', 'write needs a non-empty array of ops')
      if (ops.length > MAX_OPS_PER_WRITE) throw new CausewayError('INVALID_ARGUMENT', `a write holds at most ${MAX_OPS_PER_WRITE} ops`)
      const seen = new Set<string>()
      let total = 0
      for (const op of ops) {
        if (typeof op !== 'object' || op === null) throw new CausewayError('INVALID_ARGUMENT', 'each op must be an object')
        assertKey(op.key)
        if (seen.has(op.key)) throw new CausewayError('INVALID_ARGUMENT', `key '${op.key}' appears twice in one write`)
        seen.add(op.key)
        if ('delete' in op && op.delete === true) prepared.push({ key: op.key, value: undefined, supersedes: [] })
        else if ('value' in op) {
          const b = encodeValue(op.value, this.maxValueBytes())
          total += b.length
          prepared.push({ key: op.key, value: b, supersedes: [] })
        } else throw new CausewayError('INVALID_ARGUMENT', `op for '${op.key}' needs a value or delete: true`)
      }
      this.site.scopes.checkWrite(this.site.id, prepared.map((o) => o.key))
      if (total > MAX_ENTRY_BYTES - FRAME_OVERHEAD_BYTES) throw new CausewayError('VALUE_TOO_LARGE', `the write's values total ${total} bytes, over ${MAX_ENTRY_BYTES - FRAME_OVERHEAD_BYTES}`)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(() => this.commit(prepared))
  }

  private async commit(ops: WriteEntryOp[]): Promise<Version> {
    for (const op of ops) op.supersedes = this.ctx.observed.size > 0 ? (this.ctx.observed.get(op.key) ?? []) : []
    const { version, dot } = await this.site.localWrite(ops, this.ctx)
    this.ctx.afterWrite(dot, ops.map((o) => o.key), version, (k) => this.site.modeOf(k) !== 'lww')
    return version
  }

  get(key: string, options?: ReadOptions): Promise<Entry | undefined> {
    let remote: number | undefined
    try {
      this.checkSite()
      assertKey(key)
      remote = readOptions(options)
      if (remote === undefined) this.site.scopes.checkRead(this.site.id, [key])
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(async () => {
      const st = (await this.readStates([key], remote)).get(key)!
      return this.observe(key, st)
    })
  }

  getMany(keys: Iterable<string>, options?: ReadOptions): Promise<Map<string, Entry>> {
    let list: string[]
    let remote: number | undefined
    try {
      this.checkSite()
      if (keys === null || typeof keys !== 'object' || typeof (keys as Iterable<string>)[Symbol.iterator] !== 'function') {
        throw new CausewayError('INVALID_ARGUMENT', 'getMany needs an iterable of keys')
      }
      list = [...new Set(keys)]
      for (const k of list) assertKey(k)
      remote = readOptions(options)
      if (remote === undefined) this.site.scopes.checkRead(this.site.id, list)
      else if (list.length > MAX_REMOTE_READ_KEYS) throw new CausewayError('INVALID_ARGUMENT', `a remote getMany reads at most ${MAX_REMOTE_READ_KEYS} keys`)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(async () => {
      const states = await this.readStates(list, remote)
      const out = new Map<string, Entry>()
      for (const k of list) {
        const e = this.observe(k, states.get(k)!)
        if (e) out.set(k, e)
      }
      return out
    })
  }

  /**
   * Local keys from this site; with `remoteWaitMs`, keys outside its scopes from a member (which
   * waits for this session's past first). What a remote value depended on may not be visible here
   * yet: the session's next operation waits for it, as a continued session's first one does.
   */
  private async readStates(keys: string[], remoteWaitMs: number | undefined): Promise<Map<string, KeyState>> {
    if (remoteWaitMs === undefined) return this.site.readStates(keys)
    const local = keys.filter((k) => this.site.scopes.holds(this.site.id, k))
    const foreign = keys.filter((k) => !this.site.scopes.holds(this.site.id, k))
    const out = local.length > 0 ? await this.site.readStates(local) : new Map<string, KeyState>()
    if (foreign.length === 0) return out
    const got = await this.site.remoteRead(foreign, this.ctx.depList(), remoteWaitMs)
    let maxTime = 0
    for (const [k, st] of got) {
      out.set(k, st)
      for (const sib of st) maxTime = Math.max(maxTime, sib.time)
    }
    this.site.clock.observe(maxTime)
    this.verified = false
    this.resumeWaitMs = Math.max(this.resumeWaitMs, remoteWaitMs)
    return out
  }

  private observe(key: string, st: KeyState): Entry | undefined {
    const e = viewOf(key, st, this.site.modeOf(key))
    if (st.length > 0) {
      const o = observationOf(st)
      this.ctx.observe(key, o.versions, o.dots, this.site.modeOf(key) !== 'lww')
    }
    return e
  }

  context(): string {
    return this.ctx.encode()
  }

  private checkSite(): void {
    this.site.checkOpen()
  }
  private maxValueBytes(): number {
    return this.site.maxValueBytes
  }
}


/** Validated read options: undefined for a local read, else the remote read's wait in ms. */
function readOptions(o: ReadOptions | undefined): number | undefined {
  if (o === undefined) return undefined
  if (typeof o !== 'object' || o === null) throw new CausewayError('INVALID_ARGUMENT', 'read options must be an object')
  if (o.remote !== undefined && typeof o.remote !== 'boolean') throw new CausewayError('INVALID_ARGUMENT', 'remote must be a boolean')
  const waitMs = o.waitMs ?? REMOTE_READ_WAIT_MS_DEFAULT
  if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0 || waitMs > MAX_REMOTE_READ_WAIT_MS) throw new CausewayError('INVALID_ARGUMENT', `waitMs must be a number of ms in 0..${MAX_REMOTE_READ_WAIT_MS}`)
  return o.remote === true ? waitMs : undefined
}
