import { createServer, STATUS_CODES } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { CausewayError, isCausewayError } from '@causeway/core'
import type { Entry, Logger, Session, Site, Value, Version, WriteOp } from '@causeway/core'

/** Largest accepted request body: a 1 MiB value plus JSON overhead and escaping. */
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
/** A request not answered within this is answered 504 TIMEOUT (a write's outcome is then unknown). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
/** A client must send its whole header block within this, or the connection is closed (408). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000
/**
 * Longest Causeway-Wait-Ms a client may ask for: below the request timeout, so a wait that ends
 * still leaves time for the operation itself and the answer is CONTEXT_UNAVAILABLE, not 504.
 */
export const MAX_WAIT_MS = 25_000
/** getMany key count cap, so one request cannot pin the site. */
export const MAX_GET_MANY_KEYS = 1000

export const CONTEXT_HEADER = 'causeway-context'
export const WAIT_HEADER = 'causeway-wait-ms'

export interface HttpServerOptions {
  site: Site
  host: string
  port: number
  maxBodyBytes?: number
  logger?: Logger
  /** Extra fields merged into GET /v1/status (e.g. peerId, addrs). */
  statusExtra?: () => Record<string, unknown>
  /** Default DEFAULT_REQUEST_TIMEOUT_MS; Causeway-Wait-Ms is capped at min(MAX_WAIT_MS, 5/6 of it). */
  requestTimeoutMs?: number
  /** Default DEFAULT_HEADERS_TIMEOUT_MS. */
  headersTimeoutMs?: number
}

export interface HttpServer {
  /** Base URL, e.g. http://127.0.0.1:8101 */
  readonly url: string
  readonly port: number
  /** Stop accepting, let in-flight requests finish (up to graceMs), then drop the rest. */
  close(graceMs?: number): Promise<void>
}

/** Ops per atomic write request. */
export const MAX_WRITE_OPS = 1000

/**
 * Host header values a loopback API answers to. Anything else is a browser tricked by DNS
 * rebinding (evil.example resolving to 127.0.0.1) into talking to us: refuse it.
 */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true // HTTP/1.0 clients
  const h = host.toLowerCase() // host names are case-insensitive (RFC 3986 §3.2.2)
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d+$/, '')
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]'
}

/**
 * A browser names the page's origin on cross-origin requests. Only pages served from this machine
 * may talk to the API: anything else (including "null", sandboxed frames) is a CSRF attempt.
 */
function allowedOrigin(origin: string | undefined): boolean {
  if (origin === undefined) return true // not a browser, or a same-origin navigation
  const m = /^https?:\/\/(\[[^\]]*\]|[^/:]+)(:\d{1,5})?$/i.exec(origin)
  return m !== null && loopbackHost(m[1]!)
}

/**
 * Bodies must be declared JSON: text/plain, form and multipart bodies are what a foreign page can
 * send without a CORS preflight, so accepting them would let any web page write to the store.
 */
function jsonContentType(type: string | undefined): boolean {
  if (type === undefined) return false
  return /^application\/json\s*(;.*)?$/i.test(type.trim())
}

/** Methods each route answers to (the Allow header of a 405). */
const ALLOW_KV = 'GET, PUT, DELETE'
const ALLOW_ANY = 'GET, PUT, DELETE, POST'

function parseOps(raw: unknown): WriteOp[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_WRITE_OPS) throw new HttpError('INVALID_ARGUMENT', `"ops" must be an array of 1 to ${MAX_WRITE_OPS} operations`)
  return raw.map((op, i) => {
    if (typeof op !== 'object' || op === null || Array.isArray(op)) throw new HttpError('INVALID_ARGUMENT', `ops[${i}] must be an object`)
    const o = op as Record<string, unknown>
    const hasValue = Object.prototype.hasOwnProperty.call(o, 'value')
    if (o['delete'] === true && !hasValue) return { key: o['key'] as string, delete: true as const }
    if (hasValue && o['delete'] === undefined) return { key: o['key'] as string, value: o['value'] as Value }
    throw new HttpError('INVALID_ARGUMENT', `ops[${i}] must be { "key", "value" } or { "key", "delete": true }`)
  })
}

/** HTTP status for each stable error code; unknown codes are 500. */
export function httpStatusFor(code: string): number {
  if (code === 'VALUE_TOO_LARGE' || code === 'BODY_TOO_LARGE') return 413
  if (code === 'NOT_FOUND') return 404
  if (code === 'METHOD_NOT_ALLOWED') return 405
  if (code === 'FORBIDDEN' || code === 'FORBIDDEN_ORIGIN') return 403
  if (code === 'UNSUPPORTED_MEDIA_TYPE') return 415
  if (code === 'REQUEST_TIMEOUT') return 408
  if (code === 'HEADERS_TOO_LARGE') return 431
  // The context names sites or writes this deployment never had: retrying cannot help.
  if (code === 'CONTEXT_FOREIGN') return 422
  // Temporary: the context's dependencies are not visible yet; retry (with a longer wait) later.
  if (code === 'CONTEXT_UNAVAILABLE' || code === 'CLOSED') return 503
  if (code === 'TIMEOUT') return 504
  if (code.startsWith('INVALID_')) return 400
  return 500
}

class HttpError extends CausewayError {}

/** A CONTEXT_UNAVAILABLE whose dependencies can never become visible here is CONTEXT_FOREIGN. */
function clientFacing(err: unknown): unknown {
  if (!isCausewayError(err, 'CONTEXT_UNAVAILABLE')) return err
  const unknown = err.details['unknownOrigins']
  if (!Array.isArray(unknown) || unknown.length === 0) return err
  return new HttpError('CONTEXT_FOREIGN', `the context depends on writes of ${unknown.map(String).join(', ')} that this deployment does not have (a token from another deployment?)`, { cause: err, details: { unknownOrigins: unknown } })
}

/** JSON has no bytes or dates: Dates become ISO strings, bytes base64 (lossy; see docs/http-api.md). */
function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key]
  if (raw instanceof Date) return raw.toISOString()
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
  return value
}

function entryJson(e: Entry): Record<string, unknown> {
  const out: Record<string, unknown> = { key: e.key, value: e.value, version: e.version }
  if (e.siblings !== undefined) out['siblings'] = e.siblings
  return out
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0')
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new HttpError('BODY_TOO_LARGE', `request body over ${maxBytes} bytes`))
      return
    }
    const chunks: Buffer[] = []
    let total = 0
    let failed = false
    req.on('data', (c: Buffer) => {
      if (failed) return
      total += c.byteLength
      if (total > maxBytes) {
        failed = true
        reject(new HttpError('BODY_TOO_LARGE', `request body over ${maxBytes} bytes`))
        return
      }
      chunks.push(c)
    })
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)) })
    req.on('error', (err) => { if (!failed) { failed = true; reject(err) } })
  })
}

async function readJson(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  if (!jsonContentType(req.headers['content-type'])) throw new HttpError('UNSUPPORTED_MEDIA_TYPE', 'request body must be sent with Content-Type: application/json')
  const body = await readBody(req, maxBytes)
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    throw new HttpError('INVALID_ARGUMENT', 'request body is not valid JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError('INVALID_ARGUMENT', 'request body must be a JSON object')
  return parsed as Record<string, unknown>
}

function decodeKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded)
  } catch {
    throw new HttpError('INVALID_KEY', 'key is not valid percent-encoding')
  }
}

function headerString(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  if (Array.isArray(v)) throw new HttpError('INVALID_ARGUMENT', `header ${name} given more than once`)
  return v === undefined || v === '' ? undefined : v
}

/** A session continuing the caller's context (Causeway-Context / Causeway-Wait-Ms headers). */
function sessionFor(site: Site, req: IncomingMessage, maxWaitMs: number): Session {
  const context = headerString(req, CONTEXT_HEADER)
  const waitRaw = headerString(req, WAIT_HEADER)
  let waitMs: number | undefined
  if (waitRaw !== undefined) {
    if (!/^\d{1,6}$/.test(waitRaw) || Number(waitRaw) > maxWaitMs) throw new HttpError('INVALID_ARGUMENT', `${WAIT_HEADER} must be an integer in [0, ${maxWaitMs}]`)
    waitMs = Number(waitRaw)
  }
  return site.session({ ...(context === undefined ? {} : { context }), ...(waitMs === undefined ? {} : { waitMs }) })
}

/** Node's parser errors (clientError) as stable codes: the answer is JSON like every other. */
function clientErrorCode(err: NodeJS.ErrnoException): { status: number; code: string; message: string; allow?: string } {
  if (err.code === 'HPE_INVALID_METHOD') return { status: 405, code: 'METHOD_NOT_ALLOWED', message: 'unknown method', allow: ALLOW_ANY }
  if (err.code === 'HPE_HEADER_OVERFLOW') return { status: 431, code: 'HEADERS_TOO_LARGE', message: 'request headers too large' }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, code: 'REQUEST_TIMEOUT', message: 'request not received in time' }
  return { status: 400, code: 'INVALID_REQUEST', message: 'malformed HTTP request' }
}

/**
 * The node's HTTP/JSON API (node:http, no framework). One session per request, continued from
 * the request's Causeway-Context header; the response's header carries the updated context.
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { site } = opts
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  const headersTimeoutMs = Math.min(opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, requestTimeoutMs)
  const maxWaitMs = Math.min(MAX_WAIT_MS, Math.floor((requestTimeoutMs * 5) / 6))
  const log = opts.logger
  const sockets = new Set<Socket>()
  let closing = false
  // A site that stopped itself (storage failure) must not look healthy on /v1/status.
  let failure: Error | undefined
  const unsubscribe = typeof site.onFailure === 'function' ? site.onFailure((e) => { failure = e }) : () => {}

  const send = (res: ServerResponse, status: number, body: unknown, session?: Session, extra: Record<string, string> = {}): void => {
    if (res.headersSent || res.writableEnded) return // already answered (504 raced the operation)
    const text = JSON.stringify(body, jsonReplacer)
    const headers: Record<string, string | number> = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...extra,
    }
    if (session !== undefined) {
      try { headers[CONTEXT_HEADER] = session.context() } catch { /* site closing: no context to hand back */ }
    }
    if (closing) headers['connection'] = 'close'
    res.writeHead(status, headers)
    res.end(text)
  }

  const sendError = (res: ServerResponse, raw: unknown, session?: Session): void => {
    const err = clientFacing(raw)
    let code = 'INTERNAL'
    let message = 'internal error'
    if (isCausewayError(err)) {
      code = err.code
      message = err.message
    } else {
      log?.error({ err }, 'http request failed')
    }
    const status = httpStatusFor(code)
    if (res.headersSent || res.writableEnded) {
      if (!res.writableEnded) res.destroy()
      return
    }
    const extra: Record<string, string> = {}
    if (status === 503) extra['retry-after'] = '1'
    if (code === 'BODY_TOO_LARGE') extra['connection'] = 'close'
    const allow = isCausewayError(err) ? err.details['allow'] : undefined
    if (typeof allow === 'string') extra['allow'] = allow
    const body: { error: Record<string, unknown> } = { error: { code, message } }
    if (code === 'CONTEXT_FOREIGN') body.error['unknownOrigins'] = (err as CausewayError).details['unknownOrigins']
    send(res, status, body, session, extra)
  }

  const wrongMethod = (allow: string): HttpError => new HttpError('METHOD_NOT_ALLOWED', `use ${allow}`, { details: { allow } })

  /** Run one session operation and answer it; errors carry the session's context too. */
  const answer = async <T>(res: ServerResponse, session: Session, op: () => Promise<T>, ok: (v: T) => [number, unknown] | undefined): Promise<void> => {
    try {
      const v = await op()
      const r = ok(v)
      if (r !== undefined) send(res, r[0], r[1], session)
    } catch (err) {
      sendError(res, err, session)
    }
  }

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'
    if (!loopbackHost(req.headers.host)) throw new HttpError('FORBIDDEN', 'Host header must name a loopback address')
    const origin = req.headers.origin
    if (!allowedOrigin(typeof origin === 'string' ? origin : undefined)) throw new HttpError('FORBIDDEN_ORIGIN', 'requests from web pages of other origins are refused')
    if (path === '/v1/status') {
      if (method !== 'GET') throw wrongMethod('GET')
      if (failure !== undefined) throw new HttpError('STORAGE_ERROR', `site ${site.id} stopped after a storage failure`)
      send(res, 200, { ...site.status(), ...opts.statusExtra?.() })
      return
    }
    if (path === '/v1/kv:getMany') {
      if (method !== 'POST') throw wrongMethod('POST')
      const body = await readJson(req, maxBodyBytes)
      const keys = body['keys']
      if (!Array.isArray(keys) || keys.length > MAX_GET_MANY_KEYS) throw new HttpError('INVALID_ARGUMENT', `"keys" must be an array of at most ${MAX_GET_MANY_KEYS} keys`)
      const session = sessionFor(site, req, maxWaitMs)
      // An array, not an object keyed by key: keys such as "__proto__" stay plain data.
      await answer(res, session, () => session.getMany(keys as string[]), (found) => [200, { entries: [...found.values()].map(entryJson) }])
      return
    }
    if (path === '/v1/kv:write') {
      if (method !== 'POST') throw wrongMethod('POST')
      const body = await readJson(req, maxBodyBytes)
      const ops = parseOps(body['ops'])
      const session = sessionFor(site, req, maxWaitMs)
      await answer(res, session, () => session.write(ops), (version) => [200, { version }])
      return
    }
    if (path.startsWith('/v1/kv/')) {
      const key = decodeKey(path.slice('/v1/kv/'.length))
      if (method === 'GET') {
        const session = sessionFor(site, req, maxWaitMs)
        await answer(res, session, () => session.get(key), (e) => {
          if (e !== undefined) return [200, entryJson(e)]
          sendError(res, new HttpError('NOT_FOUND', 'key not found'), session)
          return undefined
        })
        return
      }
      if (method === 'PUT') {
        const body = await readJson(req, maxBodyBytes)
        if (!Object.prototype.hasOwnProperty.call(body, 'value')) throw new HttpError('INVALID_VALUE', 'request body must be { "value": <json> }')
        const session = sessionFor(site, req, maxWaitMs)
        await answer(res, session, () => session.put(key, body['value'] as Value), (version: Version) => [200, { key, version }])
        return
      }
      if (method === 'DELETE') {
        const session = sessionFor(site, req, maxWaitMs)
        await answer(res, session, () => session.delete(key), (version) => [200, { key, version }])
        return
      }
      throw wrongMethod(ALLOW_KV)
    }
    throw new HttpError('NOT_FOUND', `no route ${method} ${path}`)
  }

  const server: Server = createServer({
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by default), so a
    // 10 s header timeout really fired after 10-40 s: check often enough for the limits to hold.
    requestTimeout: requestTimeoutMs,
    headersTimeout: headersTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeoutMs / 4))),
    keepAliveTimeout: 5_000,
  }, (req, res) => {
    // The whole request, waits included, is answered within requestTimeoutMs.
    const timer = setTimeout(() => {
      sendError(res, new HttpError('TIMEOUT', `request not answered within ${requestTimeoutMs} ms (a write may still take effect)`))
    }, requestTimeoutMs)
    timer.unref()
    res.once('close', () => clearTimeout(timer))
    route(req, res).catch((err: unknown) => sendError(res, err)).finally(() => clearTimeout(timer))
  })
  // Slow or stuck clients must not hold sockets forever.
  server.maxHeadersCount = 64
  server.maxConnections = 1024
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (err.code === 'ECONNRESET')) { socket.destroy(); return }
    const e = clientErrorCode(err)
    const text = JSON.stringify({ error: { code: e.code, message: e.message } })
    const allow = e.allow === undefined ? '' : `allow: ${e.allow}\r\n`
    socket.end(`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${allow}connection: close\r\n\r\n${text}`)
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      unsubscribe()
      if (err.code === 'EADDRINUSE') reject(new CausewayError('ADDRESS_IN_USE', `HTTP port ${opts.host}:${opts.port} is already in use`, { cause: err }))
      else reject(new CausewayError('INVALID_CONFIG', `cannot listen on ${opts.host}:${opts.port}: ${err.message}`, { cause: err }))
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(opts.port, opts.host)
  })
  server.on('error', (err) => log?.error({ err }, 'http server error'))
  const addr = server.address() as AddressInfo
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address

  return {
    url: `http://${hostForUrl}:${addr.port}`,
    port: addr.port,
    close(graceMs = 5_000): Promise<void> {
      closing = true
      unsubscribe()
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => { for (const s of sockets) s.destroy() }, graceMs)
        server.close(() => { clearTimeout(timer); resolve() })
        server.closeIdleConnections()
      })
    },
  }
}
