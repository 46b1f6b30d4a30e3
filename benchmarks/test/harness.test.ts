import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cleanupAll, liveChildren, spawnTracked } from '../src/harness.js'
import { startDelayProxy } from '../src/delay-proxy.js'
import { main, parseArgs } from '../src/cli.js'
import { validateReport } from '../src/report.js'
import { renderFigure } from '../src/svg.js'

const tmp = mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-test-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('benchmark harness', () => {
  it('starts child processes and leaves none running after cleanup', async () => {
    const a = spawnTracked(process.execPath, ['-e', 'setInterval(() => {}, 1000)'])
    // a child that ignores SIGTERM must still be gone (SIGKILL after the grace period)
    const b = spawnTracked(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'])
    await new Promise((r) => setTimeout(r, 300))
    expect(a.pid && alive(a.pid)).toBe(true)
    expect(b.pid && alive(b.pid)).toBe(true)
    expect(liveChildren()).toBe(2)
    await cleanupAll(500)
    expect(liveChildren()).toBe(0)
    expect(alive(a.pid!)).toBe(false)
    expect(alive(b.pid!)).toBe(false)
  })

  it('delay proxy forwards in order, delays each direction and counts bytes', async () => {
    const server = net.createServer((s) => s.pipe(s)) // echo
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as net.AddressInfo).port
    const proxy = await startDelayProxy({ targetPort: port, latencyMs: 40 })
    try {
      const sock = net.connect({ host: proxy.host, port: proxy.port })
      await new Promise<void>((r) => sock.once('connect', () => r()))
      const chunks: Buffer[] = []
      const expected = Array.from({ length: 50 }, (_, i) => `msg-${i};`).join('')
      const done = new Promise<void>((resolve) => {
        sock.on('data', (d: Buffer) => {
          chunks.push(d)
          if (Buffer.concat(chunks).length >= expected.length) resolve()
        })
      })
      const t0 = performance.now()
      for (let i = 0; i < 50; i++) sock.write(`msg-${i};`)
      await done
      const rtt = performance.now() - t0
      // a lower bound only: the echo crossed the proxy twice, 40 ms each way
      expect(rtt).toBeGreaterThanOrEqual(79)
      expect(Buffer.concat(chunks).toString()).toBe(expected)
      expect(proxy.bytesUp).toBe(expected.length)
      expect(proxy.bytesDown).toBe(expected.length)
      sock.destroy()
    } finally {
      await proxy.close()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  it('rejects bad command lines with a usage error', async () => {
    expect(() => parseArgs(['--only', 'no-such-bench'])).toThrow(/unknown benchmark/)
    expect(() => parseArgs(['--reps', '0'])).toThrow(/--reps/)
    expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown option/)
    expect(await main(['--only', 'no-such-bench'])).toBe(2)
  })

  it('renders well-formed SVG charts', () => {
    const base = { id: 'x', title: 'T <&>', xLabel: 'x', yLabel: 'y', conclusion: 'c', reproduce: 'r' }
    for (const kind of ['line', 'bar', 'cdf'] as const) {
      const svg = renderFigure({ ...base, kind, categories: ['a', 'b'], series: [{ name: 's', points: [[0, 1], [1, 2]] }] })
      expect(svg.startsWith('<svg')).toBe(true)
      expect(svg.endsWith('</svg>')).toBe(true)
      expect(svg).toContain('T &lt;&amp;&gt;')
    }
  })

  it('a tiny run produces a well-formed JSON report and markdown', async () => {
    const resultsDir = path.join(tmp, 'results')
    const md = path.join(tmp, 'docs', 'benchmarks.md')
    const json = path.join(tmp, 'out.json')
    const code = await main(['--tiny', '--only', 'kv-micro', '--results-dir', resultsDir, '--md', md, '--json', json, '--no-progress'])
    const report = JSON.parse(readFileSync(json, 'utf8'))
    expect(validateReport(report)).toEqual([])
    expect(report.benchmarks.map((b: { name: string }) => b.name)).toEqual(['kv-micro'])
    expect(report.machine.cores).toBeGreaterThan(0)
    const status = report.benchmarks[0].status
    expect(['ok', 'partial', 'skipped', 'failed']).toContain(status)
    // a failed benchmark (a bug in the store) still yields a report; the exit code says so
    expect(code).toBe(status === 'failed' ? 1 : 0)
    // a tiny run never replaces the full results (latest.json): it has its own file (issue #8 item 12)
    expect(existsSync(path.join(resultsDir, 'latest-tiny.json'))).toBe(true)
    expect(existsSync(path.join(resultsDir, 'latest.json'))).toBe(false)
    const text = readFileSync(md, 'utf8')
    expect(text).toContain('# Benchmarks')
    expect(text).toContain(report.machine.cpu)
    expect(text).toContain('`kv-micro`')
    if (status === 'ok') expect(text).toMatch(/kv-micro-vs-raw\.svg/)
    expect(liveChildren()).toBe(0)
  })
})
