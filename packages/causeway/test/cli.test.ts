import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, REPO, ensureBuilt, freePort } from './cluster.js'

interface Run { code: number | null; stdout: string; stderr: string }

function run(args: string[], cwd: string, timeoutMs = 20_000, uid?: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(uid === undefined ? {} : { uid, gid: uid }) })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += String(d) })
    child.stderr.on('data', (d) => { stderr += String(d) })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

describe('causeway CLI', () => {
  let dir = ''
  const children: Array<ReturnType<typeof spawn>> = []
  beforeAll(async () => {
    ensureBuilt()
    dir = await mkdtemp(join(tmpdir(), 'causeway-cli-'))
  }, 120_000)
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  async function config(name: string, extra: Record<string, unknown> = {}): Promise<string> {
    const file = join(dir, `${name}.json`)
    await writeFile(file, JSON.stringify({ id: 'solo', dir: `./data/${name}`, listen: [`/ip4/127.0.0.1/tcp/${await freePort()}`], http: { port: await freePort() }, ...extra }))
    return file
  }

  /** Start serve and resolve with the parsed ready line. */
  function serve(file: string): Promise<{ child: ReturnType<typeof spawn>; ready: { http: string; peerId: string } }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(child)
      let out = ''
      let err = ''
      const timer = setTimeout(() => reject(new Error(`not ready: ${err}`)), 20_000)
      child.stderr.on('data', (d) => { err += String(d) })
      child.stdout.on('data', (d) => {
        out += String(d)
        const line = out.split('\n').find((l) => l.includes('"ready":true'))
        if (line !== undefined) { clearTimeout(timer); resolve({ child, ready: JSON.parse(line) }) }
      })
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${err}`)) })
    })
  }

  it('keygen prints a stable PeerId and never overwrites', async () => {
    const a = await run(['keygen', '--out', 'k.key'], dir)
    expect(a.code).toBe(0)
    expect(a.stdout.trim()).toMatch(/^12D3KooW\w+$/)
    const b = await run(['keygen', '--out', 'k.key'], dir)
    expect(b.stdout).toBe(a.stdout)
    expect(b.stderr).toMatch(/exists/)
    // The documented order configures peers before any site (or its dir) exists.
    const c = await run(['keygen', '--out', 'no/such/dir/k.key'], dir)
    expect(c.code).toBe(0)
    expect(c.stdout.trim()).toMatch(/^12D3KooW\w+$/)
    expect((await stat(join(dir, 'no/such/dir/k.key'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'no/such'))).mode & 0o777).toBe(0o700)
  })

  it('init writes a config that loads, and refuses to overwrite it', async () => {
    expect((await run(['init', '--out', 'site.json', '--id', 'lyon'], dir)).code).toBe(0)
    expect(await readFile(join(dir, 'site.json'), 'utf8')).toContain('"id": "lyon"')
    const again = await run(['init', '--out', 'site.json'], dir)
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/exists/)
  })

  it('usage and config errors exit 2 with the field and file named', async () => {
    expect((await run(['frobnicate'], dir)).code).toBe(2)
    expect((await run(['serve'], dir)).code).toBe(2)
    const file = join(dir, 'typo.json')
    await writeFile(file, JSON.stringify({ id: 'x', dir: './d', http: { port: 1 }, peerz: [] }))
    const r = await run(['serve', '--config', file], dir)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`INVALID_CONFIG: ${file}: field "peerz" is unknown (did you mean "peers"?)`)
  })

  it('serves, reports status, refuses a second process on the same dir or ports, and exits 0 on SIGTERM', async () => {
    const file = await config('main')
    const { child, ready } = await serve(file)
    const put = await fetch(`${ready.http}/v1/kv/k`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: [1, 'two'] }) })
    expect(put.status).toBe(200)
    const got = await fetch(`${ready.http}/v1/kv/k`)
    expect(((await got.json()) as { value: unknown }).value).toEqual([1, 'two'])

    const st = await run(['status', '--url', ready.http], dir)
    expect(st.code).toBe(0)
    expect(st.stdout).toContain(`site solo (${ready.peerId})`)
    expect(st.stdout).toContain('PEER  STATE')
    const cfgStatus = await run(['status', '--config', file, '--json'], dir)
    expect(JSON.parse(cfgStatus.stdout).id).toBe('solo')

    // Same data dir, other ports: the LevelDB lock refuses it.
    const cfg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
    const locked = join(dir, 'locked.json')
    await writeFile(locked, JSON.stringify({ ...cfg, listen: [`/ip4/127.0.0.1/tcp/${await freePort()}`], http: { port: await freePort() } }))
    const r1 = await run(['serve', '--config', locked], dir)
    expect(r1.code).toBe(1)
    expect(r1.stderr).toMatch(/LOCKED/)
    // Same HTTP port, other dir.
    const httpBusy = join(dir, 'http-busy.json')
    await writeFile(httpBusy, JSON.stringify({ ...cfg, dir: './data/other', listen: [`/ip4/127.0.0.1/tcp/${await freePort()}`] }))
    const r2 = await run(['serve', '--config', httpBusy], dir)
    expect(r2.code).toBe(1)
    expect(r2.stderr).toMatch(/ADDRESS_IN_USE: HTTP port/)
    // Same libp2p port, other dir.
    const p2pBusy = join(dir, 'p2p-busy.json')
    await writeFile(p2pBusy, JSON.stringify({ ...cfg, dir: './data/other2', http: { port: await freePort() } }))
    const r3 = await run(['serve', '--config', p2pBusy], dir)
    expect(r3.code).toBe(1)
    expect(r3.stderr).toMatch(/ADDRESS_IN_USE: cannot listen/)

    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    // The lock is released: the same config serves again.
    const again = await serve(file)
    const got2 = await fetch(`${again.ready.http}/v1/kv/k`)
    expect(got2.status).toBe(200)
    const exited2 = new Promise<number | null>((r) => again.child.on('exit', (code) => r(code)))
    again.child.kill('SIGINT')
    expect(await exited2).toBe(0)
  })

  it('a missing key directory is created; a key path below a file is a clear error', async () => {
    const file = await config('nokey', { privateKey: './missing/dir/peer.key' })
    const { child } = await serve(file)
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect((await stat(join(dir, 'missing/dir/peer.key'))).mode & 0o777).toBe(0o600)
    await writeFile(join(dir, 'plainfile'), 'x')
    const bad = await config('badkey', { privateKey: './plainfile/peer.key' })
    const r = await run(['serve', '--config', bad], dir)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/INVALID_OPTIONS: .*plainfile/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('bad multiaddrs, PeerIds and listen addresses are configuration errors (exit 2)', async () => {
    const peerId = (await run(['keygen', '--out', 'other.key'], dir)).stdout.trim()
    const cases: Array<[string, Record<string, unknown>]> = [
      ['bad-addr', { peers: [{ site: 'lyon', addrs: ['/ip4/10.0.0.2/tcpx/4101'] }] }],
      ['no-p2p', { peers: [{ site: 'lyon', addrs: ['/ip4/10.0.0.2/tcp/4101'] }] }],
      ['bad-peerid', { peers: [{ site: 'lyon', peerId: '12D3KooWnotapeerid' }] }],
      ['bad-peerid-addr', { peers: [{ site: 'lyon', addrs: ['/ip4/10.0.0.2/tcp/4101/p2p/12D3KooWLyon...'] }] }],
      ['bad-listen', { listen: ['tcp://0.0.0.0:4101'] }],
      ['unusable-listen', { listen: ['/ip4/203.0.113.7/tcp/4101'] }],
      ['udp-listen', { listen: ['/ip4/127.0.0.1/udp/4101'] }],
    ]
    expect(peerId).toMatch(/^12D3KooW/)
    for (const [name, extra] of cases) {
      const r = await run(['serve', '--config', await config(name, extra)], dir)
      expect(r.code, `${name}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(/INVALID_CONFIG: /)
    }
  }, 120_000)

  it('an unusable dir fails at once with one clear line (exit 2)', async () => {
    const proc = await run(['serve', '--config', await config('proc', { dir: '/proc/causeway/paris' })], dir, 15_000)
    expect(proc.code).toBe(2)
    expect(proc.stderr).toMatch(/INVALID_CONFIG: .*field "dir" \/proc\/causeway\/paris: is on a pseudo file system/)
    await writeFile(join(dir, 'notadir'), 'x')
    const below = await run(['serve', '--config', await config('below', { dir: './notadir/data' })], dir)
    expect(below.code).toBe(2)
    expect(below.stderr).toMatch(/INVALID_CONFIG: .*field "dir"/)
    expect(below.stderr.trim().split('\n')).toHaveLength(1)
    if (process.getuid?.() === 0) {
      // As root nothing is unwritable: run the node as nobody against a root-only directory.
      const locked = join(dir, 'root-only')
      await mkdir(locked, { mode: 0o700 })
      const file = await config('eacces', { dir: join(locked, 'data') })
      await chmod(file, 0o644)
      await chmod(dir, 0o755)
      const r = await run(['serve', '--config', file], '/', 20_000, 65534)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(/INVALID_CONFIG: .*field "dir" .*permission denied/)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  }, 60_000)

  it('the bin entry is a committed executable with a shebang (npx causeway)', async () => {
    const pkg = JSON.parse(await readFile(join(REPO, 'packages/causeway/package.json'), 'utf8')) as { bin: Record<string, string> }
    const bin = join(REPO, 'packages/causeway', pkg.bin['causeway']!)
    expect((await readFile(bin, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true)
    const mode = execFileSync('git', ['ls-files', '-s', '--', bin], { cwd: REPO, encoding: 'utf8' })
    expect(mode).toMatch(/^100755 /)
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('status of a node that is not running fails cleanly', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((r) => server.close(() => r()))
    const r = await run(['status', '--url', `http://127.0.0.1:${port}`], dir)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/cannot reach/)
  })
})
