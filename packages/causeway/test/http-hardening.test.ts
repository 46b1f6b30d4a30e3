import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { connect } from 'node:net'
import { request } from 'node:http'
import { readFile } from 'node:fs/promises'
import { startHttpServer, DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, MAX_WAIT_MS } from '../src/server.js'
import type { HttpServer } from '../src/server.js'
import { FakeSite } from './fake-site.js'

interface Raw { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** node:http request with exactly the headers given (fetch forbids Host and Origin). */
function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Bytes on a fresh socket; resolves with everything the server sent before closing. */
function socketExchange(port: number, bytes: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`server did not close within ${timeoutMs} ms; got ${JSON.stringify(got)}`)) }, timeoutMs)
    s.setEncoding('utf8')
    s.on('data', (d: string) => { got += d })
    s.on('close', () => { clearTimeout(timer); resolve(got) })
    s.on('error', () => {})
    s.write(bytes)
  })
}

function code(r: Raw): string {
  return (JSON.parse(r.body) as { error: { code: string } }).error.code
}

describe('HTTP API hardening', () => {
  let site: FakeSite
  let http: HttpServer
  beforeEach(async () => {
    site = new FakeSite()
    http = await startHttpServer({ site: site.asSite(), host: '127.0.0.1', port: 0 })
  })
  afterEach(async () => { await http.close(100) })

  const writeBody = JSON.stringify({ ops: [{ key: 'csrf', value: 'pwned' }] })

  it('refuses bodies not typed application/json (CSRF without preflight)', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const r = await raw(http.url, 'POST', '/v1/kv:write', type === undefined ? {} : { 'content-type': type }, writeBody)
      expect(r.status).toBe(415)
      expect(code(r)).toBe('UNSUPPORTED_MEDIA_TYPE')
      expect(r.headers['content-type']).toMatch(/^application\/json/)
    }
    const put = await raw(http.url, 'PUT', '/v1/kv/csrf', { 'content-type': 'text/plain;charset=UTF-8' }, '{"value":1}')
    expect(put.status).toBe(415)
    expect(site.data.has('csrf')).toBe(false)
    const ok = await raw(http.url, 'POST', '/v1/kv:write', { 'content-type': 'Application/JSON; charset=utf-8' }, writeBody)
    expect(ok.status).toBe(200)
  })

  it('refuses foreign Origin headers, on writes and on reads', async () => {
    for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1.evil.example', 'https://localhost.evil.example:8101', 'file://']) {
      const r = await raw(http.url, 'POST', '/v1/kv:write', { 'content-type': 'application/json', origin }, writeBody)
      expect(r.status).toBe(403)
      expect(code(r)).toBe('FORBIDDEN_ORIGIN')
      const d = await raw(http.url, 'DELETE', '/v1/kv/x', { origin })
      expect(d.status).toBe(403)
    }
    expect(site.data.has('csrf')).toBe(false)
    // A page served from this machine is the same trust domain as any local process.
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8101', 'http://[::1]:8101', 'HTTP://LOCALHOST']) {
      const r = await raw(http.url, 'POST', '/v1/kv:write', { 'content-type': 'application/json', origin }, writeBody)
      expect(r.status).toBe(200)
    }
  })

  it('the Host check is case-insensitive', async () => {
    const port = http.port
    for (const host of [`LOCALHOST:${port}`, 'LocalHost', `[::1]:${port}`]) {
      expect((await raw(http.url, 'GET', '/v1/status', { host })).status).toBe(200)
    }
    expect((await raw(http.url, 'GET', '/v1/status', { host: 'EVIL.example' })).status).toBe(403)
  })

  it('wrong and unknown methods answer 405 with Allow and a JSON body', async () => {
    const r = await raw(http.url, 'POST', '/v1/kv/k', { 'content-type': 'application/json' }, '{}')
    expect(r.status).toBe(405)
    expect(r.headers['allow']).toBe('GET, PUT, DELETE')
    expect(code(r)).toBe('METHOD_NOT_ALLOWED')
    const s = await raw(http.url, 'DELETE', '/v1/status', {})
    expect(s.status).toBe(405)
    expect(s.headers['allow']).toBe('GET')
    // A method Node's parser does not know at all.
    const text = await socketExchange(http.port, 'FROBNICATE /v1/kv/k HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n', 5000)
    expect(text).toMatch(/^HTTP\/1\.1 405 /)
    expect(text).toMatch(/\r\nallow: [A-Z, ]+\r\n/i)
    const body = text.slice(text.indexOf('\r\n\r\n') + 4)
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } })
    // Garbage is 400 with a JSON body too.
    const garbage = await socketExchange(http.port, 'GET / HTTP/1.1\r\nbad header line\r\n\r\n', 5000)
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /)
    expect(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'INVALID_REQUEST' } })
  })

  it('Causeway-Wait-Ms is capped below the request timeout', async () => {
    expect(MAX_WAIT_MS).toBeLessThan(30_000)
    const r = await raw(http.url, 'GET', '/v1/kv/k', { 'causeway-wait-ms': '60000' })
    expect(r.status).toBe(400)
    expect(code(r)).toBe('INVALID_ARGUMENT')
    expect((await raw(http.url, 'GET', '/v1/kv/k', { 'causeway-wait-ms': String(MAX_WAIT_MS) })).status).toBe(404)
  })

  it('a status of a site that stopped itself is not 200', async () => {
    expect((await raw(http.url, 'GET', '/v1/status', {})).status).toBe(200)
    site.fail(new Error('disk gone'))
    const r = await raw(http.url, 'GET', '/v1/status', {})
    expect(r.status).toBe(500)
    expect(code(r)).toBe('STORAGE_ERROR')
  })
})

describe('HTTP timeouts', () => {
  let site: FakeSite
  let http: HttpServer | undefined
  beforeEach(() => { site = new FakeSite() })
  afterEach(async () => { await http?.close(100) })

  it('the header timeout closes a stalled connection close to its value (408, JSON)', async () => {
    // Node only checks every connectionsCheckingInterval (30 s by default): without setting it a
    // 400 ms header timeout fired after up to 30 s.
    http = await startHttpServer({ site: site.asSite(), host: '127.0.0.1', port: 0, headersTimeoutMs: 400 })
    const text = await socketExchange(http.port, 'GET /v1/status HTTP/1.1\r\nhost: 127.0.0.1\r\n', 8000)
    expect(text).toMatch(/^HTTP\/1\.1 408 /)
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'REQUEST_TIMEOUT' } })
  })

  it('an operation that does not settle is answered 504 TIMEOUT at the request timeout', async () => {
    http = await startHttpServer({ site: site.asSite(), host: '127.0.0.1', port: 0, requestTimeoutMs: 600 })
    site.stall = true
    const r = await raw(http.url, 'GET', '/v1/kv/k', {})
    expect(r.status).toBe(504)
    expect(code(r)).toBe('TIMEOUT')
    // The wait cap follows a smaller request timeout.
    expect((await raw(http.url, 'GET', '/v1/kv/k', { 'causeway-wait-ms': '600' })).status).toBe(400)
  })
})

describe('docs/http-api.md agrees with the code', () => {
  it('documents the wait cap and the timeouts the server uses', async () => {
    const doc = await readFile(new URL('../../../docs/http-api.md', import.meta.url), 'utf8')
    expect(doc).toContain(`| \`Causeway-Wait-Ms\` | 0–${MAX_WAIT_MS} |`)
    expect(doc).toContain(`integer 0–${MAX_WAIT_MS} (default 0)`)
    expect(doc).toContain(`| answer deadline (\`504 TIMEOUT\`) | ${DEFAULT_REQUEST_TIMEOUT_MS / 1000} s`)
    expect(doc).toContain(`| receiving the request / its headers (\`408\`) | ${DEFAULT_REQUEST_TIMEOUT_MS / 1000} s / ${DEFAULT_HEADERS_TIMEOUT_MS / 1000} s`)
    expect(doc).toMatch(/\| value nesting depth \| 64 levels/)
  })
})
