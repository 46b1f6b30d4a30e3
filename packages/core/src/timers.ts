import type { CancelTimer, TimerOptions, Timers } from './types.js'

/** The process's own timers; a timer without keepAlive is unref'd so it never holds the process open. */
export const systemTimers: Timers = {
  after(ms: number, fn: () => void, options?: TimerOptions): CancelTimer {
    const t = setTimeout(fn, ms)
    if (options?.keepAlive !== true) t.unref?.()
    return () => clearTimeout(t)
  },
  every(ms: number, fn: () => void, options?: TimerOptions): CancelTimer {
    const t = setInterval(fn, ms)
    if (options?.keepAlive !== true) t.unref?.()
    return () => clearInterval(t)
  },
}

/** True when x has the shape of a Timers (validation of openSite / simulator options). */
export function isTimers(x: unknown): x is Timers {
  return typeof x === 'object' && x !== null && typeof (x as Timers).after === 'function' && typeof (x as Timers).every === 'function'
}
