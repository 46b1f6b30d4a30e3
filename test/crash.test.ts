import { afterAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { openSite } from 'causeway'
import { createSimNetwork } from '@causeway/sim'

const root = mkdtempSync(join(tmpdir(), 'cw-crash-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const facade = pathToFileURL(join(import.meta.dirname, '../packages/causeway/dist/index.js')).href
const child = join(root, 'writer.mjs')
writeFileSync(
  child,
  `import { openSite } from ${JSON.stringify(facade)}
const site = await openSite({ id: 'paris', dir: process.argv[2], durability: 'fsync', shards: 4 })
console.log('ready')
let n = 0
async function writer(w) {
  const s = site.session()
  for (;;) {
    const i = n++
    const key = 'k/' + w + '/' + i
    if (i % 10 === 0) await s.write([{ key, value: i }, { key: key + '/tx', value: i }])
    else await s.put(key, { i, pad: 'x'.repeat(100) })
    process.stdout.write(key + '\\n')  // printed only after the write is acknowledged
  }
}
for (let w = 0; w < 16; w++) writer(w)
`,
)

/** Run the writer until it has acknowledged `acks` writes, then SIGKILL it. Returns the acknowledged keys. */
function runAndKill(dir: string, acks: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    const keys: string[] = []
    let buf = ''
    let killed = false
    const timer = setTimeout(() => {
      p.kill('SIGKILL')
      reject(new Error('writer did not reach the target in time'))
    }, 30_000)
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      const lines = buf.split('\n')
      buf = lines.pop()!
      for (const l of lines) if (l.startsWith('k/')) keys.push(l)
      if (!killed && keys.length >= acks) {
        killed = true
        p.kill('SIGKILL')
      }
    })
    p.on('exit', (_code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL') reject(new Error(`writer exited without SIGKILL (${signal})`))
      else resolve(keys)
    })
  })
}

describe('durability', () => {
  it('fsync: a site killed with SIGKILL mid-load loses no acknowledged write, and replicates it after reopen', async () => {
    const dir = join(root, 'paris')
    const acked = await runAndKill(dir, 1500)
    expect(acked.length).toBeGreaterThanOrEqual(1500)
    // Reopen on a network with a fresh peer: everything acknowledged must be there and flow to lyon.
    const net = createSimNetwork({ latencyMs: 5 })
    const paris = await openSite({ id: 'paris', dir, network: net.adapter('paris') })
    const lyon = await openSite({ id: 'lyon', storage: 'memory', network: net.adapter('lyon') })
    try {
      const local = await paris.session().getMany(acked)
      expect(acked.filter((k) => !local.has(k))).toEqual([])
      // The multi-key writes are whole: each tx key has its twin.
      const twins = acked.filter((k) => Number(k.split('/')[2]) % 10 === 0).map((k) => k + '/tx')
      expect((await paris.session().getMany(twins)).size).toBe(twins.length)
      await net.settle()
      const remote = await lyon.session().getMany(acked)
      expect(acked.filter((k) => !remote.has(k))).toEqual([])
      // And the site keeps working: new writes get versions above everything before the crash.
      await paris.session().put('after', 1)
      await net.settle()
      expect((await lyon.session().get('after'))!.value).toBe(1)
    } finally {
      await paris.close()
      await lyon.close()
      await net.close()
    }
  })
})
