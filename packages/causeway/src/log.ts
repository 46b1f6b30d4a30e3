import { pino } from 'pino'
import type { Logger } from '@causeway/core'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export type NodeLogger = Logger & { fatal(obj: object, msg?: string): void; flush(): void }

/**
 * Structured JSON logs (pino) on stderr, so stdout stays free for command output (the `ready`
 * line of `serve`, tables of `status`). Quiet by default: only warnings and errors.
 */
export function createLogger(level: LogLevel = 'warn', bindings: Record<string, unknown> = {}): NodeLogger {
  const destination = pino.destination({ fd: 2, sync: true })
  const logger = pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, destination)
  return {
    debug: (obj, msg) => logger.debug(obj, msg),
    info: (obj, msg) => logger.info(obj, msg),
    warn: (obj, msg) => logger.warn(obj, msg),
    error: (obj, msg) => logger.error(obj, msg),
    fatal: (obj, msg) => logger.fatal(obj, msg),
    flush: () => logger.flush(),
  }
}
