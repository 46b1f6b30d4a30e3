import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { simulate } from '../src/simulate.js'

const cli = join(import.meta.dirname, '../dist/cli.js')
/** Seeds of the sweep; CAUSEWAY_SEEDS=N runs more (CI), CAUSEWAY_SEED=s replays one. */
const SEEDS = process.env.CAUSEWAY_SEED ? [Number(process.env.CAUSEWAY_SEED)] : Array.from({ length: Number(process.env.CAUSEWAY_SEEDS ?? 200) }, (_, i) => i + 1)
const SWEEP_MINUTES = 0.25

describe('causeway simulate', () => {
  it(`${SEEDS.length} seeds of 3-5 sites, ${SWEEP_MINUTES} virtual minutes each, with 5x faults: no violation`, async () => {
    const failures: string[] = []
    let operations = 0
    let restarts = 0
    let partitions = 0
    let powerLosses = 0
    for (const seed of SEEDS) {
      const sites = 3 + (seed % 3)
      const r = await simulate({ seed, sites, minutes: SWEEP_MINUTES, faultScale: 5 })
      operations += r.operations
      restarts += r.restarts
      partitions += r.partitions
      powerLosses += r.powerLosses
      if (r.violations.length > 0 || r.errors.length > 0) {
        const line = `seed ${seed}: ${[...r.violations.map((v) => `${v.kind}: ${v.detail}`), ...r.errors].slice(0, 3).join('; ')}\n  replay: causeway simulate --seed ${seed} --sites ${sites} --minutes ${SWEEP_MINUTES}  (faultScale 5: CAUSEWAY_SEED=${seed} npx vitest run packages/causeway/test/simulate.test.ts)`
        console.log(line)
        failures.push(line)
      }
    }
    expect(failures).toEqual([])
    // The sweep exercised what it claims to.
    expect(operations).toBeGreaterThan(SEEDS.length * 20)
    if (SEEDS.length >= 50) {
      expect(restarts).toBeGreaterThan(SEEDS.length / 10)
      expect(partitions).toBeGreaterThan(SEEDS.length / 10)
      expect(powerLosses).toBeGreaterThan(SEEDS.length / 20)
    }
  }, 300_000)

  it('the same seed gives the same trace and outcome; another seed does not', async () => {
    const a = await simulate({ seed: 7, sites: 4, minutes: 0.5, faultScale: 5 })
    const b = await simulate({ seed: 7, sites: 4, minutes: 0.5, faultScale: 5 })
    const c = await simulate({ seed: 8, sites: 4, minutes: 0.5, faultScale: 5 })
    expect(b.trace).toBe(a.trace)
    expect({ ...b, trace: '' }).toEqual({ ...a, trace: '' })
    expect(a.operations).toBeGreaterThan(50)
    expect(c.trace).not.toBe(a.trace)
  })

  it('fails a run whose restarted site lost its disk before its writes reached a peer', async () => {
    // A site that loses its disk fetches back from its peers every write they hold (own-recovery),
    // so only runs where acknowledged writes had not left the site yet lose data — and must fail.
    let caught = 0
    for (let seed = 1; seed <= 20 && caught === 0; seed++) {
      const r = await simulate({ seed, sites: 3, minutes: 0.5, faultScale: 10, diskLossOnRestart: true })
      if (r.restarts > 0 && r.violations.length + r.errors.length > 0) caught++
    }
    expect(caught).toBeGreaterThan(0)
  })

  it('the command prints the summary and exits 0, or prints the finding and the replay command and exits 1', () => {
    const ok = spawnSync(process.execPath, [cli, 'simulate', '--seed', '7', '--sites', '3', '--minutes', '0.2'], { encoding: 'utf8', timeout: 120_000 })
    expect(ok.stdout).toMatch(/^seed 7: \d+ operations, 0 violations\n$/)
    expect(ok.status).toBe(0)
    // Same seed, another process: the same run, frame for frame.
    const args = [cli, 'simulate', '--seed', '7', '--sites', '3', '--minutes', '0.2', '--trace']
    const t1 = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 })
    const t2 = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 })
    expect(t1.stdout).toMatch(/^seed 7: \d+ operations, 0 violations\n  trace [1-9]\d*:[0-9a-f]{16}\n$/)
    expect(t2.stdout).toBe(t1.stdout)
    expect(t1.stdout.split('\n')[0]).toBe(ok.stdout.trim())
    const dir = mkdtempSync(join(tmpdir(), 'cw-sim-'))
    try {
      const good = join(dir, 'good.mjs')
      writeFileSync(good, `export default { conflicts: 'lww', async step({ session, random, worker }) {
  const key = 'u' + Math.floor(random() * 4)
  if (random() < 0.5) await session.put(key, 'w' + worker + ':' + random())
  else await session.get(key)
} }\n`)
      const r1 = spawnSync(process.execPath, [cli, 'simulate', '--seed', '3', '--sites', '3', '--minutes', '0.2', '--workload', good], { encoding: 'utf8', timeout: 120_000 })
      expect(r1.stdout).toMatch(/^seed 3: \d+ operations, 0 violations\n$/)
      expect(r1.status).toBe(0)
      const bad = join(dir, 'bad.mjs')
      writeFileSync(bad, `export default async function step({ session }) { await session.put('', 1) }\n`)
      const r2 = spawnSync(process.execPath, [cli, 'simulate', '--seed', '3', '--sites', '3', '--minutes', '0.2', '--workload', bad], { encoding: 'utf8', timeout: 120_000 })
      expect(r2.stdout).toMatch(/^seed 3: \d+ operations, [1-9]\d* violations\n/)
      expect(r2.stdout).toContain(`replay: causeway simulate --seed 3 --sites 3 --minutes 0.2 --workload ${bad}`)
      expect(r2.status).toBe(1)
      const usage = spawnSync(process.execPath, [cli, 'simulate', '--sites', '3'], { encoding: 'utf8', timeout: 60_000 })
      expect(usage.status).toBe(2)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
