import type { Session, WriteOp } from './api.js'
import type { LamportClock } from './clock.js'
import { assertKey, encodeValue } from './codec.js'
import { observationOf, viewOf, type KeyState, type Resolver } from './conflict.js'
import type { CausalContext, Dot } from './context.js'
import { MAX_OPS_PER_WRITE, type WriteEntryOp } from './entry.js'
import { CausewayError } from './errors.js'
import { FRAME_OVERHEAD_BYTES, MAX_ENTRY_BYTES } from './limits.js'
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
}

/** A client session: its causal context, and operations run in call order. */
export class SessionImpl implements Session {
  private chain: Promise<unknown> = Promise.resolve()
  private verified: boolean

  constructor(private readonly site: SessionHost, private readonly ctx: CausalContext, continued: boolean, private readonly waitMs: number) {
    this.verified = !continued
    if (continued) site.clock.observe(ctx.maxTime)
  }

  /** Operations run in call order even when the caller does not await. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(async () => {
      if (!this.verified) {
        const ok = await this.site.waitForDeps(this.ctx.depList(), this.waitMs)
        if (!ok) throw new CausewayError('CONTEXT_UNAVAILABLE', `the session's dependencies are not visible at site ${this.site.id} after ${this.waitMs} ms`, { details: { unknownOrigins: this.site.unknownOrigins(this.ctx.depList()) } })
        this.verified = true
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

  get(key: string): Promise<Entry | undefined> {
    try {
      this.checkSite()
      assertKey(key)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(async () => {
      const st = (await this.site.readStates([key])).get(key)!
      return this.observe(key, st)
    })
  }

  getMany(keys: Iterable<string>): Promise<Map<string, Entry>> {
    let list: string[]
    try {
      this.checkSite()
      if (keys === null || typeof keys !== 'object' || typeof (keys as Iterable<string>)[Symbol.iterator] !== 'function') {
        throw new CausewayError('INVALID_ARGUMENT', 'getMany needs an iterable of keys')
      }
      list = [...new Set(keys)]
      for (const k of list) assertKey(k)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.run(async () => {
      const states = await this.site.readStates(list)
      const out = new Map<string, Entry>()
      for (const k of list) {
        const e = this.observe(k, states.get(k)!)
        if (e) out.set(k, e)
      }
      return out
    })
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

