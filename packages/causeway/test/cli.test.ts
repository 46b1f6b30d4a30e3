import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, ensureBuilt, freePort } from './cluster.js'

interface Run { code: number | null; stdout: string; stderr: string }

function run(args: string[], cwd: string, timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
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
    const c = await run(['keygen', '--out', 'no/such/dir/k.key'], dir)
    expect(c.code).toBe(1)
    expect(c.stderr).toMatch(/directory .* does not exist/)
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
    const put = await fetch(`${ready.http}/v1/kv/k`, { method: 'PUT', body: JSON.stringify({ value: [1, 'two'] }) })
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

  it('a missing key directory is a clear error', async () => {
    const file = await config('nokey', { privateKey: './missing/dir/peer.key' })
    const r = await run(['serve', '--config', file], dir)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/cannot create key file .*missing\/dir\/peer.key: directory .* does not exist/)
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
