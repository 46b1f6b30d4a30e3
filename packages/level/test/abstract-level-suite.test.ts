import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

// abstract-level's own suite is a tape program; run it in a child process and read its TAP summary,
// so `npm test` fails when any of its assertions fails (or when the suite stops early).
const runner = fileURLToPath(new URL('./abstract-level-suite.mjs', import.meta.url))

function runSuite(shards: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runner], { env: { ...process.env, SUITE_SHARDS: String(shards) } })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, out }))
  })
}

describe('abstract-level test suite', () => {
  it('passes in full on a 4-shard site (every database a fresh prefix)', { timeout: 300_000 }, async () => {
    const { code, out } = await runSuite(4)
    const failed = out.split('\n').filter((l) => l.startsWith('not ok'))
    expect(failed).toEqual([])
    const plan = /^1\.\.(\d+)$/m.exec(out)
    const tests = /^# tests (\d+)$/m.exec(out)
    const pass = /^# pass +(\d+)$/m.exec(out)
    expect(plan).not.toBeNull()
    // The suite (including its second round on a sublevel) has 4296 assertions with this manifest;
    // a floor catches a run that silently stopped early or a manifest that skips whole groups.
    expect(Number(plan![1])).toBeGreaterThanOrEqual(4296)
    expect(Number(tests![1])).toBe(Number(plan![1]))
    expect(Number(pass![1])).toBe(Number(plan![1]))
    expect(out).not.toMatch(/^# fail/m)
    expect(code).toBe(0)
  })
})
