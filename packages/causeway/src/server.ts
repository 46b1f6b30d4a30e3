import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { CausewayError, isCausewayError } from '@causeway/core'
import type { Entry, Logger, Session, Site, Value, Version, WriteOp } from '@causeway/core'

/** Largest accepted request body: a 1 MiB value plus JSON overhead and escaping. */
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
/** Longest Causeway-Wait-Ms a client may ask for. */
export const MAX_WAIT_MS = 60_000
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
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '')
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]'
}

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
  if (code === 'FORBIDDEN') return 403
  // Temporary: the context's dependencies are not visible yet; retry (with a longer wait) later.
  if (code === 'CONTEXT_UNAVAILABLE' || code === 'CLOSED') return 503
  if (code === 'TIMEOUT') return 504
  if (code.startsWith('INVALID_')) return 400
  return 500
}

class HttpError extends CausewayError {}

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
  // The body is parsed as JSON whatever Content-Type says: `curl -d` and fetch(string) send
  // form / text types by default, and rejecting them helps nobody.
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
function sessionFor(site: Site, req: IncomingMessage): Session {
  const context = headerString(req, CONTEXT_HEADER)
  const waitRaw = headerString(req, WAIT_HEADER)
  let waitMs: number | undefined
  if (waitRaw !== undefined) {
    if (!/^\d{1,6}$/.test(waitRaw) || Number(waitRaw) > MAX_WAIT_MS) throw new HttpError('INVALID_ARGUMENT', `${WAIT_HEADER} must be an integer in [0, ${MAX_WAIT_MS}]`)
    waitMs = Number(waitRaw)
  }
  return site.session({ ...(context === undefined ? {} : { context }), ...(waitMs === undefined ? {} : { waitMs }) })
}

/**
 * The node's HTTP/JSON API (node:http, no framework). One session per request, continued from
 * the request's Causeway-Context header; the response's header carries the updated context.
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { site } = opts
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const log = opts.logger
  const sockets = new Set<Socket>()
  let closing = false

  const send = (res: ServerResponse, status: number, body: unknown, session?: Session): void => {
    const text = JSON.stringify(body, jsonReplacer)
    const headers: Record<string, string | number> = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    }
    if (session !== undefined) {
      try { headers[CONTEXT_HEADER] = session.context() } catch { /* site closing: no context to hand back */ }
    }
    if (closing) headers['connection'] = 'close'
    res.writeHead(status, headers)
    res.end(text)
  }

  const sendError = (res: ServerResponse, err: unknown, session?: Session): void => {
    let code = 'INTERNAL'
    let message = 'internal error'
    if (isCausewayError(err)) {
      code = err.code
      message = err.message
    } else {
      log?.error({ err }, 'http request failed')
    }
    const status = httpStatusFor(code)
    if (status === 503 && !res.headersSent) res.setHeader('retry-after', '1')
    if (code === 'BODY_TOO_LARGE') res.setHeader('connection', 'close')
    if (res.headersSent) { res.destroy(); return }
    send(res, status, { error: { code, message } }, session)
  }

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'
    if (!loopbackHost(req.headers.host)) throw new HttpError('FORBIDDEN', 'Host header must name a loopback address')
    if (path === '/v1/status') {
      if (method !== 'GET') throw new HttpError('METHOD_NOT_ALLOWED', 'use GET')
      send(res, 200, { ...site.status(), ...opts.statusExtra?.() })
      return
    }
    if (path === '/v1/kv:getMany') {
      if (method !== 'POST') throw new HttpError('METHOD_NOT_ALLOWED', 'use POST')
      const body = await readJson(req, maxBodyBytes)
      const keys = body['keys']
      if (!Array.isArray(keys) || keys.length > MAX_GET_MANY_KEYS) throw new HttpError('INVALID_ARGUMENT', `"keys" must be an array of at most ${MAX_GET_MANY_KEYS} keys`)
      const session = sessionFor(site, req)
      try {
        const found = await session.getMany(keys as string[])
        // An array, not an object keyed by key: keys such as "__proto__" stay plain data.
        send(res, 200, { entries: [...found.values()].map(entryJson) }, session)
      } catch (err) {
        sendError(res, err, session)
      }
      return
    }
    if (path === '/v1/kv:write') {
      if (method !== 'POST') throw new HttpError('METHOD_NOT_ALLOWED', 'use POST')
      const body = await readJson(req, maxBodyBytes)
      const ops = parseOps(body['ops'])
      const session = sessionFor(site, req)
      try {
        const version = await session.write(ops)
        send(res, 200, { version }, session)
      } catch (err) {
        sendError(res, err, session)
      }
      return
    }
    if (path.startsWith('/v1/kv/')) {
      const key = decodeKey(path.slice('/v1/kv/'.length))
      if (method === 'GET') {
        const session = sessionFor(site, req)
        try {
          const e = await session.get(key)
          if (e === undefined) sendError(res, new HttpError('NOT_FOUND', 'key not found'), session)
          else send(res, 200, entryJson(e), session)
        } catch (err) {
          sendError(res, err, session)
        }
        return
      }
      if (method === 'PUT') {
        const body = await readJson(req, maxBodyBytes)
        if (!Object.prototype.hasOwnProperty.call(body, 'value')) throw new HttpError('INVALID_VALUE', 'request body must be { "value": <json> }')
        const session = sessionFor(site, req)
        try {
          const version: Version = await session.put(key, body['value'] as Value)
          send(res, 200, { key, version }, session)
        } catch (err) {
          sendError(res, err, session)
        }
        return
      }
      if (method === 'DELETE') {
        const session = sessionFor(site, req)
        try {
          const version = await session.delete(key)
          send(res, 200, { key, version }, session)
        } catch (err) {
          sendError(res, err, session)
        }
        return
      }
      throw new HttpError('METHOD_NOT_ALLOWED', 'use GET, PUT or DELETE')
    }
    throw new HttpError('NOT_FOUND', `no route ${method} ${path}`)
  }

  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => sendError(res, err))
  })
  // Slow or stuck clients must not hold sockets forever.
  server.requestTimeout = 30_000
  server.headersTimeout = 10_000
  server.keepAliveTimeout = 5_000
  server.maxHeadersCount = 64
  server.maxConnections = 1024
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n')
    else socket.destroy()
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
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
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => { for (const s of sockets) s.destroy() }, graceMs)
        server.close(() => { clearTimeout(timer); resolve() })
        server.closeIdleConnections()
      })
    },
  }
}
