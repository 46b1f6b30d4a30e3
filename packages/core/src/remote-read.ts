import type { Logger } from './api.js'
import { decodeValue, encode } from './codec.js'
import type { KeyState } from './conflict.js'
import type { Dot } from './context.js'
import { CausewayError } from './errors.js'
import { MAX_PENDING_REMOTE_READS, MAX_REMOTE_READS_SERVED_PER_PEER } from './limits.js'
import { MAX_REMOTE_READ_WAIT_MS, type Frame, type WireSibling } from './protocol.js'
import type { Scopes } from './scopes.js'
import type { Timers } from './types.js'

/** What remote reads need from the site and the peer protocol. */
export interface RemoteReadHost {
  readonly siteId: string
  readonly scopes: Scopes
  readonly log: Logger
  /** Largest frame the transport takes (a response beyond it is answered 'too large'). */
  frameBytes(): number
  /** A connected peer that agreed on the configuration at hello. */
  reachable(site: string): boolean
  send(site: string, f: Frame): boolean
  /** A Lamport time from outside is within the clock-skew bound. */
  admits(time: number): boolean
  waitForDeps(deps: Dot[], waitMs: number): Promise<boolean>
  readStates(keys: string[]): Promise<Map<string, KeyState>>
  /** Injected timers: a read's deadline keeps the process alive until it settles. */
  readonly timers: Timers
}

interface Pending {
  keys: Set<string>
  targets: Set<string>
  failed: number
  tooLarge: boolean
  resolve(states: Map<string, KeyState>): void
  reject(e: unknown): void
  cancel: () => void
}

/**
 * Remote reads (session.get(key, { remote: true, waitMs })): a site asks the members of a key's
 * scope it is directly connected to; each member answers once the asking session's dependencies
 * are visible there (it waits like a continued session), with the key states as it stores them.
 * The first answer wins. Requests served per peer and pending requests are bounded.
 */
export class RemoteReads {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private readonly serving = new Map<string, number>()

  constructor(private readonly host: RemoteReadHost) {}

  /** Read keys held elsewhere; rejects UNAVAILABLE when no member answers within waitMs. */
  async read(keys: string[], deps: Dot[], waitMs: number): Promise<Map<string, KeyState>> {
    const groups = new Map<string, { members: readonly string[]; keys: string[] }>()
    for (const k of keys) {
      const m = this.host.scopes.membersOf(k) ?? []
      const id = m.join(',')
      let g = groups.get(id)
      if (!g) groups.set(id, (g = { members: m, keys: [] }))
      g.keys.push(k)
    }
    const out = new Map<string, KeyState>()
    const parts = await Promise.all([...groups.values()].map((g) => this.ask(g.members, g.keys, deps, Math.min(waitMs, MAX_REMOTE_READ_WAIT_MS))))
    for (const part of parts) for (const [k, st] of part) out.set(k, st)
    return out
  }

  private ask(members: readonly string[], keys: string[], deps: Dot[], waitMs: number): Promise<Map<string, KeyState>> {
    const targets = members.filter((m) => m !== this.host.siteId && this.host.reachable(m))
    if (targets.length === 0) return Promise.reject(unavailable(`no member of the scope of '${keys[0]}' (${members.join(', ')}) is connected`))
    if (this.pending.size >= MAX_PENDING_REMOTE_READS) return Promise.reject(unavailable('too many remote reads pending'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const cancel = this.host.timers.after(
        waitMs,
        () => {
          this.pending.delete(id)
          reject(unavailable(`no member of the scope of '${keys[0]}' answered within ${waitMs} ms`))
        },
        { keepAlive: true },
      )
      this.pending.set(id, { keys: new Set(keys), targets: new Set(targets), failed: 0, tooLarge: false, resolve, reject, cancel })
      const f: Frame = { t: 'read', id, keys, deps: deps.map(([s, q]) => [s, q] as [typeof s, number]), waitMs }
      for (const t of targets) this.host.send(t, f)
    })
  }

  /** A member's answer. Anything unexpected (not asked of it, keys not asked) is dropped. */
  onResponse(peer: string, f: Extract<Frame, { t: 'read-res' }>): void {
    const p = this.pending.get(f.id)
    if (!p || !p.targets.has(peer)) return
    p.targets.delete(peer)
    if (f.status !== 0) {
      p.failed++
      if (f.status === 2) p.tooLarge = true
      if (p.targets.size === 0) this.settle(f.id, p, p.tooLarge ? new CausewayError('VALUE_TOO_LARGE', 'the remote read answer does not fit one frame: read fewer keys at once') : unavailable('no member could answer (its dependencies were not visible in time, or it was busy)'))
      return
    }
    const states = new Map<string, KeyState>()
    try {
      for (const [k, sibs] of f.states) {
        if (!p.keys.has(k)) throw new Error(`key '${k}' was not asked`)
        states.set(
          k,
          sibs.map(([time, site, stream, seq, v]) => {
            if (!this.host.admits(time)) throw new Error('a time too far ahead')
            if (v !== null) decodeValue(v)
            return { time, site, stream, seq, value: v === null ? undefined : v }
          }),
        )
      }
    } catch (e) {
      this.host.log.warn({ peer, err: (e as Error).message }, 'invalid remote read answer: dropped')
      if (p.targets.size === 0) this.settle(f.id, p, unavailable('the members answered invalid data'))
      return
    }
    for (const k of p.keys) if (!states.has(k)) states.set(k, [])
    this.settle(f.id, p, undefined, states)
  }

  private settle(id: number, p: Pending, err: unknown, states?: Map<string, KeyState>): void {
    this.pending.delete(id)
    p.cancel()
    if (err !== undefined) p.reject(err)
    else p.resolve(states!)
  }

  /** A peer asks us to read keys we hold, once its session's dependencies are visible here. */
  async onRequest(peer: string, f: Extract<Frame, { t: 'read' }>): Promise<void> {
    const answer = (status: 0 | 1 | 2, states: Array<[string, WireSibling[]]> = []): void => {
      if (this.host.reachable(peer)) this.host.send(peer, { t: 'read-res', id: f.id, status, states })
    }
    const n = this.serving.get(peer) ?? 0
    if (n >= MAX_REMOTE_READS_SERVED_PER_PEER || f.keys.some((k) => !this.host.scopes.holds(this.host.siteId, k))) return answer(1)
    this.serving.set(peer, n + 1)
    try {
      if (!(await this.host.waitForDeps(f.deps, f.waitMs))) return answer(1)
      const states = await this.host.readStates(f.keys)
      const wire: Array<[string, WireSibling[]]> = f.keys.map((k) => [k, (states.get(k) ?? []).map((s) => [s.time, s.site, s.stream, s.seq, s.value ?? null] as WireSibling)])
      if (encode(wire).length > this.host.frameBytes()) return answer(2)
      answer(0, wire)
    } catch (e) {
      this.host.log.warn({ peer, err: e }, 'remote read failed here')
      answer(1)
    } finally {
      const m = (this.serving.get(peer) ?? 1) - 1
      if (m <= 0) this.serving.delete(peer)
      else this.serving.set(peer, m)
    }
  }

  /** The site closes: every pending read fails. */
  close(): void {
    for (const [id, p] of this.pending) this.settle(id, p, new CausewayError('CLOSED', 'the site closed during a remote read'))
  }
}

function unavailable(msg: string): CausewayError {
  return new CausewayError('UNAVAILABLE', msg)
}
