import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createServer } from 'node:net'
import { startHttpServer, httpStatusFor } from '../src/server.js'
import type { HttpServer } from '../src/server.js'
import { formatStatus } from '../src/status.js'
import { FakeSite } from './fake-site.js'

const JSON_TYPE = { 'content-type': 'application/json' }

describe('HTTP API', () => {
  let site: FakeSite
  let http: HttpServer
  beforeEach(async () => {
    site = new FakeSite()
    http = await startHttpServer({ site: site.asSite(), host: '127.0.0.1', port: 0, statusExtra: () => ({ peerId: 'p' }) })
  })
  afterEach(async () => { await http.close() })

  const put = (key: string, value: unknown, headers: Record<string, string> = {}) =>
    fetch(`${http.url}/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ value }) })

  it('put, get, delete with the context header', async () => {
    const r1 = await put('vm/42', { state: 'building', n: [1, null, true] })
    expect(r1.status).toBe(200)
    expect(await r1.json()).toEqual({ key: 'vm/42', version: { time: 1, site: 'fake' } })
    const ctx = r1.headers.get('causeway-context')
    expect(ctx).toBe('t1')
    const r2 = await fetch(`${http.url}/v1/kv/vm%2F42`, { headers: { 'causeway-context': ctx! } })
    expect(r2.status).toBe(200)
    expect(await r2.json()).toEqual({ key: 'vm/42', value: { state: 'building', n: [1, null, true] }, version: { time: 1, site: 'fake' } })
    const r3 = await fetch(`${http.url}/v1/kv/vm%2F42`, { method: 'DELETE' })
    expect(r3.status).toBe(200)
    const r4 = await fetch(`${http.url}/v1/kv/vm%2F42`)
    expect(r4.status).toBe(404)
    expect(await r4.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'key not found' } })
  })

  it('getMany returns an array of entries', async () => {
    await put('a', 1)
    await put('__proto__', 2)
    const r = await fetch(`${http.url}/v1/kv:getMany`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ keys: ['a', 'missing', '__proto__'] }) })
    expect(r.status).toBe(200)
    const body = await r.json() as { entries: Array<{ key: string; value: unknown }> }
    expect(body.entries.map((e) => [e.key, e.value])).toEqual([['a', 1], ['__proto__', 2]])
    const bad = await fetch(`${http.url}/v1/kv:getMany`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ keys: 'a' }) })
    expect(bad.status).toBe(400)
  })

  it('atomic multi-key write', async () => {
    await put('gone', 0)
    const r = await fetch(`${http.url}/v1/kv:write`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ ops: [{ key: 'x', value: 1 }, { key: 'y', value: [2] }, { key: 'gone', delete: true }] }) })
    expect(r.status).toBe(200)
    const { version } = await r.json() as { version: { time: number } }
    expect(site.data.get('x')?.version.time).toBe(version.time)
    expect(site.data.get('y')?.value).toEqual([2])
    expect(site.data.has('gone')).toBe(false)
    for (const ops of [[], 'x', [{ key: 'x' }], [{ key: 'x', value: 1, delete: true }], [null]]) {
      const bad = await fetch(`${http.url}/v1/kv:write`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ ops }) })
      expect(bad.status).toBe(400)
    }
  })

  it('refuses a non-loopback Host header (DNS rebinding)', async () => {
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${http.url}/v1/status`, { headers: { host: 'evil.example:8101' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(403)
    const ok = await fetch(`${http.url.replace('127.0.0.1', 'localhost')}/v1/status`).catch(() => undefined)
    if (ok !== undefined) expect(ok.status).toBe(200)
  })

  it('maps error codes to statuses', async () => {
    expect((await put('k', 'x'.repeat(200))).status).toBe(413)
    const unavailable = await fetch(`${http.url}/v1/kv/k`, { headers: { 'causeway-context': 't99', 'causeway-wait-ms': '10' } })
    expect(unavailable.status).toBe(503)
    expect(((await unavailable.json()) as { error: { code: string } }).error.code).toBe('CONTEXT_UNAVAILABLE')
    const badCtx = await fetch(`${http.url}/v1/kv/k`, { headers: { 'causeway-context': 'garbage' } })
    expect(badCtx.status).toBe(400)
    expect(((await badCtx.json()) as { error: { code: string } }).error.code).toBe('INVALID_CONTEXT')
    expect((await fetch(`${http.url}/v1/kv/k`, { headers: { 'causeway-wait-ms': '-1' } })).status).toBe(400)
    expect((await fetch(`${http.url}/v1/kv/%E0%A4%A`)).status).toBe(400)
    expect((await fetch(`${http.url}/v1/nope`)).status).toBe(404)
    expect((await fetch(`${http.url}/v1/kv/k`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${http.url}/v1/kv/k`, { method: 'PUT', headers: JSON_TYPE, body: '{not json' })).status).toBe(400)
    expect((await fetch(`${http.url}/v1/kv/k`, { method: 'PUT', headers: JSON_TYPE, body: '{}' })).status).toBe(400)
    // Not JSON-typed: what a foreign web page can send without a preflight (CSRF), so refused.
    expect((await fetch(`${http.url}/v1/kv/k`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: '{"value":1}' })).status).toBe(415)
    const big = await fetch(`${http.url}/v1/kv/k`, { method: 'PUT', headers: JSON_TYPE, body: JSON.stringify({ value: 'x'.repeat(3 * 1024 * 1024) }) }).catch(() => undefined)
    if (big !== undefined) expect(big.status).toBe(413)
    site.closed = true
    expect((await fetch(`${http.url}/v1/kv/k`)).status).toBe(503)
    expect(httpStatusFor('INVALID_KEY')).toBe(400)
    expect(httpStatusFor('STORAGE_ERROR')).toBe(500)
  })

  it('serves status with extras and formats it as a table', async () => {
    const r = await fetch(`${http.url}/v1/status`)
    const body = await r.json() as Parameters<typeof formatStatus>[0]
    expect(body.peerId).toBe('p')
    const table = formatStatus(body)
    expect(table).toContain('lyon  connected     1.2s ago   3')
    expect(table.split('\n')[0]).toBe('site fake (p)  pending in: 2')
    const withLink = formatStatus({ ...body, transport: { lyon: 'up', nice: 'down' } })
    expect(withLink).toContain('PEER  STATE         LINK  LAST SEEN  PENDING OUT')
    expect(withLink).toContain('nice  disconnected  down  -          0')
  })

  it('reports ADDRESS_IN_USE', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    try {
      await expect(startHttpServer({ site: site.asSite(), host: '127.0.0.1', port })).rejects.toMatchObject({ code: 'ADDRESS_IN_USE' })
    } finally {
      server.close()
    }
  })
})
