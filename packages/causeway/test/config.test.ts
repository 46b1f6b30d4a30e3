import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exampleConfig, loadConfig, stripJsonComments, validateConfig } from '../src/config.js'

describe('config', () => {
  let dir = ''
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'causeway-cfg-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  const base = { id: 'paris', dir: './data', http: { port: 8101 } }

  it('the example config loads, with absolute state paths that do not depend on where the file is', async () => {
    const file = join(dir, 'site.json')
    await writeFile(file, exampleConfig('paris'))
    const cfg = await loadConfig(file)
    expect(cfg.id).toBe('paris')
    // Not next to the config file (/etc/causeway is read-only in the documented unit).
    expect(cfg.dir).toBe('/var/lib/causeway/paris')
    expect(cfg.privateKey).toBe('/etc/causeway/peer.key')
    expect(cfg.peers.map((p) => p.site)).toEqual(['lyon', 'nice'])
    expect(cfg.http).toEqual({ host: '127.0.0.1', port: 8101 })
    expect(cfg.logLevel).toBe('warn')
  })

  it('the init template and docs/operations.md agree on state and key paths', async () => {
    const guide = await readFile(new URL('../../../docs/operations.md', import.meta.url), 'utf8')
    const block = /`\/etc\/causeway\/site.json` on edge-1 \(paris\):\s*```jsonc\n([\s\S]*?)```/.exec(guide)
    expect(block).not.toBeNull()
    const documented = validateConfig(JSON.parse(stripJsonComments(block![1]!)), '/etc/causeway/site.json')
    const template = validateConfig(JSON.parse(stripJsonComments(exampleConfig('paris'))), '/etc/causeway/site.json')
    expect(template.dir).toBe(documented.dir)
    expect(template.privateKey).toBe(documented.privateKey)
    expect(template.dir.startsWith('/etc/causeway')).toBe(false)
    // The single-host variant's config is valid too, with its own ports and state paths.
    const single = /`\/etc\/causeway\/paris.json` \(lyon and nice alike[^`]*?\):\s*```jsonc\n([\s\S]*?)```/.exec(guide)
    expect(single).not.toBeNull()
    const one = validateConfig(JSON.parse(stripJsonComments(single![1]!)), '/etc/causeway/paris.json')
    expect(one.dir).toBe('/var/lib/causeway/paris')
    expect(one.listen).toEqual(['/ip4/127.0.0.1/tcp/4101'])
    expect(one.http.port).toBe(8101)
    // The documented unit makes exactly the state directory writable.
    expect(guide).toMatch(/ReadWritePaths=\/var\/lib\/causeway\n/)
    expect(guide).toMatch(/ReadOnlyPaths=\/etc\/causeway\n/)
  })

  it('relative paths resolve against the config file directory', () => {
    const cfg = validateConfig({ ...base, dir: 'state/paris', privateKey: '../keys/paris.key', psk: './swarm.key' }, '/srv/causeway/site.json')
    expect(cfg.dir).toBe('/srv/causeway/state/paris')
    expect(cfg.privateKey).toBe('/srv/keys/paris.key')
    expect(cfg.psk).toBe('/srv/causeway/swarm.key')
  })

  it('names the unknown field and the file', () => {
    const f = '/etc/causeway/site.json'
    expect(() => validateConfig({ ...base, shard: 4 }, f)).toThrow(/\/etc\/causeway\/site.json: field "shard" is unknown \(did you mean "shards"\?\)/)
    expect(() => validateConfig({ ...base, peers: [{ site: 'lyon', adrs: [] }] }, f)).toThrow(/field "peers\[0\]\.adrs" is unknown/)
    expect(() => validateConfig({ ...base, http: { port: 8101, hots: 'x' } }, f)).toThrow(/"http.hots"/)
    try {
      validateConfig({ ...base, shards: 99 }, f)
      expect.unreachable()
    } catch (e) {
      expect(e).toMatchObject({ code: 'INVALID_CONFIG', details: { file: f, field: 'shards' } })
    }
  })

  it('validates values', () => {
    const f = '/x/site.json'
    expect(() => validateConfig({ ...base, id: 'Bad' }, f)).toThrow(/"id"/)
    expect(() => validateConfig({ id: 'a', http: { port: 1 } }, f)).toThrow(/"dir" is required/)
    expect(() => validateConfig({ ...base, durability: 'sometimes' }, f)).toThrow(/"durability"/)
    expect(() => validateConfig({ ...base, conflicts: 'merge' }, f)).toThrow(/"conflicts"/)
    expect(() => validateConfig({ ...base, conflicts: { default: 'lww', prefixes: { 'c/': 'nope' } } }, f)).toThrow(/"conflicts.prefixes.c\/"/)
    expect(() => validateConfig({ ...base, http: { host: '0.0.0.0', port: 1 } }, f)).toThrow(/loopback/)
    expect(() => validateConfig({ ...base, peers: [{ site: 'paris', addrs: [] }] }, f)).toThrow(/itself/)
    expect(() => validateConfig({ ...base, peers: [{ site: 'lyon' }] }, f)).toThrow(/"peers\[0\].addrs" is required/)
    expect(() => validateConfig({ ...base, latencyMs: { lyon: 5 } }, f)).toThrow(/"latencyMs.lyon" is unknown/)
    expect(() => validateConfig({ ...base, logLevel: 'loud' }, f)).toThrow(/"logLevel"/)
    const ok = validateConfig({ ...base, '//': 'comment', conflicts: { default: 'lww', prefixes: { 'carts/': 'return-all' } }, peers: [{ site: 'lyon', addrs: ['/ip4/1.2.3.4/tcp/1/p2p/x'], send: false }], latencyMs: { lyon: 20 } }, f)
    expect(ok.conflicts).toEqual({ default: 'lww', prefixes: { 'carts/': 'return-all' } })
    expect(ok.peers[0]).toEqual({ site: 'lyon', addrs: ['/ip4/1.2.3.4/tcp/1/p2p/x'], send: false })
    expect(ok.privateKey).toBe('/x/data/peer.key')
  })

  it('reports unreadable and non-JSON files', async () => {
    await expect(loadConfig(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'INVALID_CONFIG' })
    await writeFile(join(dir, 'bad.json'), '{ "id": ')
    await expect(loadConfig(join(dir, 'bad.json'))).rejects.toThrow(/bad.json: not valid JSON/)
  })

  it('strips comments but not comment-like text in strings', () => {
    expect(JSON.parse(stripJsonComments('{ "a": "x // y", /* c */ "b": "/* z */" // t\n}'))).toEqual({ a: 'x // y', b: '/* z */' })
    expect(JSON.parse(stripJsonComments('{ "a": "q\\"//" }'))).toEqual({ a: 'q"//' })
  })
})
