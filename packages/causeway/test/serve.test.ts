import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryLevel } from 'memory-level'
import type { OpenSiteOptions, ShardDb } from '@causeway/core'
import { openSite } from '../src/index.js'
import { validateConfig } from '../src/config.js'
import { createLogger } from '../src/log.js'
import { prepareDataDir, runNode } from '../src/serve.js'
import type { RunningNode } from '../src/serve.js'

/** Memory shards whose batch writes start failing once `failAfter` more writes have succeeded. */
class FlakyStorage {
  failAfter = Infinity
  factory = (): ShardDb => {
    const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' })
    const batch = db.batch.bind(db) as (...a: unknown[]) => unknown
    ;(db as unknown as { batch: (...a: unknown[]) => unknown }).batch = (...a: unknown[]) => {
      const b = batch(...a)
      if (a.length > 0) return b // array form: not used by shards
      const chained = b as { write: (...w: unknown[]) => Promise<void> }
      const write = chained.write.bind(chained)
      chained.write = async (...w: unknown[]) => {
        if (this.failAfter-- <= 0) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
        return write(...w)
      }
      return b
    }
    return db as unknown as ShardDb
  }
}

describe('causeway serve (in process)', () => {
  let dir = ''
  let node: RunningNode | undefined
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'causeway-serve-')) })
  afterEach(async () => {
    node?.stop('test end')
    await node?.done
    node = undefined
    await rm(dir, { recursive: true, force: true })
  })

  const cfg = () => validateConfig({ id: 'solo', dir: './data', shards: 4, listen: ['/ip4/127.0.0.1/tcp/0'], http: { port: 0 }, logLevel: 'silent' }, join(dir, 'site.json'))

  it('exits 1 when the site stops itself after a storage failure (not 200 on /v1/status)', async () => {
    const storage = new FlakyStorage()
    const open = (o: OpenSiteOptions) => openSite({ ...o, storage: storage.factory })
    node = await runNode(cfg(), createLogger('silent'), open)
    const write = (ops: unknown[]) => fetch(`${node!.http}/v1/kv:write`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ops }) })
    const keys = Array.from({ length: 16 }, (_, i) => `k${i}`) // spans several of the 4 shards
    expect((await write(keys.map((key) => ({ key, value: 1 })))).status).toBe(200)
    // The log write succeeds, the apply round fails: the engine stops itself.
    storage.failAfter = 1
    const r = await write(keys.map((key) => ({ key, value: 2 })))
    expect(r.status).toBeGreaterThanOrEqual(500)
    const outcome = await Promise.race([node.done, new Promise<string>((res) => setTimeout(() => res('still running'), 10_000).unref())])
    expect(outcome).toBe(1)
    node = undefined
  })

  it('stop() is a clean exit 0', async () => {
    node = await runNode(cfg(), createLogger('silent'), openSite)
    expect((await fetch(`${node.http}/v1/status`)).status).toBe(200)
    node.stop('SIGTERM')
    expect(await node.done).toBe(0)
    node = undefined
  })

  it('a dir under /proc, a dir below a file and a bad listen address are INVALID_CONFIG, at once', async () => {
    const f = join(dir, 'site.json')
    await expect(prepareDataDir('/proc/causeway/paris', f)).rejects.toMatchObject({ code: 'INVALID_CONFIG', details: { field: 'dir' } })
    await writeFile(join(dir, 'file'), 'x')
    await expect(prepareDataDir(join(dir, 'file', 'data'), f)).rejects.toMatchObject({ code: 'INVALID_CONFIG' })
    await prepareDataDir(join(dir, 'a', 'b'), f)
    const bad = validateConfig({ id: 'solo', dir: './data', listen: ['tcp://0.0.0.0:4101'], http: { port: 0 } }, f)
    await expect(runNode(bad, createLogger('silent'), openSite)).rejects.toMatchObject({ code: 'INVALID_CONFIG' })
  }, 20_000)
})
