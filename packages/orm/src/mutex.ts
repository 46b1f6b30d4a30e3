import { CausewayError } from '@causeway/core'

type Waiter = { grant: () => void; timer?: ReturnType<typeof setTimeout> }

/**
 * In-process async locks by key. Holders of several keys take them in sorted order, so two plain
 * operations cannot deadlock; transactions take locks as they go and give up after `timeoutMs`
 * (CONFLICT) instead of deadlocking.
 */
export class KeyedMutex {
  private readonly held = new Map<string, Waiter[]>()

  /** Acquire `key`; resolves to a release function. */
  acquire(key: string, timeoutMs?: number): Promise<() => void> {
    const queue = this.held.get(key)
    if (!queue) {
      this.held.set(key, [])
      return Promise.resolve(this.releaser(key))
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { grant: () => resolve(this.releaser(key)) }
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const i = queue.indexOf(w)
          if (i >= 0) queue.splice(i, 1)
          reject(new CausewayError('CONFLICT', `lock wait timeout on ${key} (concurrent transactions on the same rows)`, { details: { key } }))
        }, timeoutMs)
      }
      queue.push(w)
    })
  }

  private releaser(key: string): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const queue = this.held.get(key)!
      const next = queue.shift()
      if (!next) {
        this.held.delete(key)
        return
      }
      if (next.timer) clearTimeout(next.timer)
      next.grant()
    }
  }
}
