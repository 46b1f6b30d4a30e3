import { afterEach, describe, expect, it } from 'vitest'
import { createSimNetwork } from '@causeway/sim'
import type { Site } from '@causeway/core'
import { openSite } from '../src/index.js'
import { startHttpServer } from '../src/server.js'
import type { HttpServer } from '../src/server.js'

/** A context token from another deployment can never be satisfied: not 503 + Retry-After. */
describe('HTTP: context tokens from elsewhere', () => {
  const sites: Site[] = []
  const servers: HttpServer[] = []
  const nets: Array<{ close(): Promise<void> }> = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close(100)))
    await Promise.all(sites.splice(0).map((s) => s.close()))
    await Promise.all(nets.splice(0).map((n) => n.close()))
  })

  async function serve(site: Site): Promise<HttpServer> {
    sites.push(site)
    const s = await startHttpServer({ site, host: '127.0.0.1', port: 0 })
    servers.push(s)
    return s
  }

  async function get(s: HttpServer, key: string, context: string): Promise<{ status: number; retryAfter: string | null; body: { error?: { code: string; unknownOrigins?: string[] } } }> {
    const r = await fetch(`${s.url}/v1/kv/${key}`, { headers: { 'causeway-context': context, 'causeway-wait-ms': '50' } })
    return { status: r.status, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as never }
  }

  it('a peer of this deployment not yet visible is 503 (retry); another deployment is 422 CONTEXT_FOREIGN', async () => {
    const net = createSimNetwork()
    nets.push(net)
    const paris = await openSite({ id: 'paris', storage: 'memory', shards: 2, network: net.adapter('paris') })
    const lyon = await openSite({ id: 'lyon', storage: 'memory', shards: 2, network: net.adapter('lyon') })
    const lyonHttp = await serve(lyon)
    sites.push(paris)
    net.partition(['paris'], ['lyon'])
    const s = paris.session()
    await s.put('k', 1)
    const token = s.context()

    // lyon knows paris (a configured peer): the write will arrive, retry later.
    const soon = await get(lyonHttp, 'k', token)
    expect(soon.status).toBe(503)
    expect(soon.body.error?.code).toBe('CONTEXT_UNAVAILABLE')
    expect(soon.retryAfter).toBe('1')

    // A standalone site of another deployment never hears of paris.
    const other = await serve(await openSite({ id: 'solo', storage: 'memory', shards: 2 }))
    const foreign = await get(other, 'k', token)
    expect(foreign.status).toBe(422)
    expect(foreign.body.error?.code).toBe('CONTEXT_FOREIGN')
    expect(foreign.body.error?.unknownOrigins).toEqual(['paris'])
    expect(foreign.retryAfter).toBeNull()

    // Another deployment's "paris" has not assigned that sequence number: the token is not its own.
    const twin = await serve(await openSite({ id: 'paris', storage: 'memory', shards: 2 }))
    const t = await get(twin, 'k', token)
    expect(t.status).toBe(422)
    expect(t.body.error?.code).toBe('CONTEXT_FOREIGN')
  })

  it('the documented value depth limit (64) holds over HTTP', async () => {
    const http = await serve(await openSite({ id: 'solo', storage: 'memory', shards: 1 }))
    const put = (depth: number) => fetch(`${http.url}/v1/kv/deep`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: `{"value":${'['.repeat(depth)}${']'.repeat(depth)}}` })
    // The top-level container is depth 0: 65 nested arrays reach depth 64, 66 go beyond.
    expect((await put(65)).status).toBe(200)
    const r = await put(66)
    expect(r.status).toBe(400)
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('INVALID_VALUE')
  })
})
