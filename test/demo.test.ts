import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

describe('npm start (the embedded multi-site demo)', () => {
  it('runs to completion, narrates replication, partition and convergence, exits 0', () => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '../packages/causeway/dist/demo.js')], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } })
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/lyon: {3}vm\/42 visible after/)
    expect(r.stdout).toMatch(/wrote carts\/alice and vm\/42 during the partition/)
    expect(r.stdout).toMatch(/converged \d+ ms after the heal/)
    // After the heal every site shows the same winner and, after resolution, no conflict.
    const winners = [...r.stdout.matchAll(/: vm\/42 = (\{.*?\}) \(last writer wins\)/g)].map((m) => m[1])
    expect(winners).toHaveLength(3)
    expect(new Set(winners).size).toBe(1)
    expect(r.stdout).not.toMatch(/still conflicting/)
  })
})
