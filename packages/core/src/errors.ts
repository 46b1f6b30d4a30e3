/** Stable error codes. Messages may change; codes may not. */
export type ErrorCode =
  | 'INVALID_KEY'
  | 'INVALID_VALUE'
  | 'VALUE_TOO_LARGE'
  | 'INVALID_OPTIONS'
  | 'INVALID_CONTEXT'
  | 'CONTEXT_UNAVAILABLE'
  | 'CLOSED'
  | 'LOCKED'
  | 'INVALID_FRAME'
  | 'TIMEOUT'
  | 'STORAGE_ERROR'
  | 'INVALID_ARGUMENT'
  | 'INVALID_MODEL'
  | 'INVALID_QUERY'
  | 'INVALID_ROW'
  | 'NOT_HOME_SITE'
  | 'CONFLICT'
  | 'INVALID_CONFIG'
  | 'ADDRESS_IN_USE'
  | 'PEER_REFUSED'
  | 'NOT_FOUND'
  | 'CLOCK_SKEW'
  | 'BOOTSTRAP_FAILED'
  | 'OUT_OF_SCOPE'
  | 'UNAVAILABLE'
  | (string & {})

/**
 * The one error class callers catch. `code` is stable; `details` carries machine-readable context
 * (for NOT_HOME_SITE, `details.homeSite`).
 */
export class CausewayError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown>
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CausewayError'
    this.code = code
    this.details = options.details ?? {}
    // Convenience for NOT_HOME_SITE callers: err.homeSite.
    for (const [k, v] of Object.entries(this.details)) {
      if (!(k in this)) Object.defineProperty(this, k, { value: v, enumerable: true })
    }
  }
}

export function isCausewayError(e: unknown, code?: ErrorCode): e is CausewayError {
  return e instanceof CausewayError && (code === undefined || e.code === code)
}

/** Invariant check: an impossible state is a bug, so crash loudly instead of corrupting data. */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`causeway invariant violated: ${message}`)
}
