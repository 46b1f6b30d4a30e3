import { CausewayError } from '@causeway/core'
import type { Entry, Session, SessionOptions, Site, SiteStatus, Value, Version } from '@causeway/core'

/** A minimal in-memory Site for HTTP tests: contexts are "t<time>" tokens. */
export class FakeSite {
  readonly id = 'fake'
  time = 0
  readonly data = new Map<string, Entry>()
  closed = false
  /** Operations never settle while set (to test the request timeout). */
  stall = false
  private readonly failureListeners = new Set<(err: Error) => void>()

  /** Simulate the engine stopping itself after a storage failure. */
  fail(err: Error): void { for (const l of this.failureListeners) l(err) }
  onFailure(listener: (err: Error) => void): () => void {
    this.failureListeners.add(listener)
    return () => this.failureListeners.delete(listener)
  }

  session(options: SessionOptions = {}): Session {
    let seen = 0
    if (options.context !== undefined) {
      const m = /^t(\d+)$/.exec(options.context)
      if (m === null) throw new CausewayError('INVALID_CONTEXT', 'bad context')
      seen = Number(m[1])
    }
    const check = async (): Promise<void> => {
      if (this.stall) await new Promise(() => {})
      if (this.closed) throw new CausewayError('CLOSED', 'closed')
      if (seen > this.time) throw new CausewayError('CONTEXT_UNAVAILABLE', 'dependencies not visible')
    }
    const version = (): Version => ({ time: ++this.time, site: this.id })
    const self = this
    return {
      async put(key: string, value: Value) {
        await check()
        if (key === '') throw new CausewayError('INVALID_KEY', 'empty key')
        if (typeof value === 'string' && value.length > 100) throw new CausewayError('VALUE_TOO_LARGE', 'too large')
        const v = version()
        self.data.set(key, { key, value, version: v })
        seen = v.time
        return v
      },
      async get(key: string) {
        await check()
        const e = self.data.get(key)
        if (e !== undefined) seen = Math.max(seen, e.version.time)
        return e
      },
      async delete(key: string) {
        await check()
        const v = version()
        self.data.delete(key)
        seen = v.time
        return v
      },
      async getMany(keys: Iterable<string>) {
        await check()
        const m = new Map<string, Entry>()
        for (const k of keys) {
          if (typeof k !== 'string') throw new CausewayError('INVALID_KEY', 'not a string')
          const e = self.data.get(k)
          if (e !== undefined) m.set(k, e)
        }
        return m
      },
      async write(ops) {
        await check()
        const v = version()
        for (const op of ops) {
          if ('delete' in op) self.data.delete(op.key)
          else self.data.set(op.key, { key: op.key, value: op.value, version: v })
        }
        seen = v.time
        return v
      },
      context: () => `t${seen}`,
    }
  }

  status(): SiteStatus {
    return { id: this.id, peers: [{ id: 'lyon', state: 'connected', lastSeenMs: 1200, pendingOut: 3 }, { id: 'nice', state: 'disconnected', pendingOut: 0 }], pendingIn: 2 }
  }

  async close(): Promise<void> { this.closed = true }
  asSite(): Site { return this as unknown as Site }
}
