/**
 * Issue #8 item 12: a quick or partial run must never overwrite the committed full report
 * (docs/benchmarks.md, its SVGs, benchmarks/results/latest.json). Runs fake benchmarks only.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { main, outputsOf, parseArgs, type CliDeps } from '../src/cli.js'
import type { Benchmark, BenchContext } from '../src/harness.js'
import { validateReport } from '../src/report.js'

function fake(name: string, quick: boolean, value: number): Benchmark {
  return {
    name,
    quick,
    description: `${name}: a fake benchmark.`,
    async run(ctx: BenchContext) {
      ctx.headline({ metric: `${name} speed`, value: ctx.mode === 'full' ? value : value / 10, unit: 'ops/s' })
      ctx.figure({ id: 'fig', kind: 'line', title: name, xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [[0, 1], [1, 2]] }], conclusion: 'c', reproduce: ctx.reproduce })
    },
  }
}

let root: string
let deps: CliDeps
let resultsDir: string
const FULL_MD = '# Benchmarks\n\nthe committed full report\n'
const FULL_JSON = '{"schema":"causeway-bench/1","mode":"full","benchmarks":[]}'
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'bench-outputs-'))
  resultsDir = path.join(root, 'benchmarks', 'results')
  mkdirSync(path.join(root, 'docs', 'benchmarks'), { recursive: true })
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(path.join(root, 'docs', 'benchmarks.md'), FULL_MD)
  writeFileSync(path.join(root, 'docs', 'benchmarks', 'alpha-fig.svg'), '<svg>full</svg>')
  writeFileSync(path.join(resultsDir, 'latest.json'), FULL_JSON)
  deps = { benchmarks: [fake('alpha', true, 100), fake('beta', false, 200)], docsReport: path.join(root, 'docs', 'benchmarks.md') }
})
afterEach(() => rmSync(root, { recursive: true, force: true }))

const run = (...argv: string[]) => main([...argv, '--results-dir', resultsDir, '--no-progress'], deps)
const docsUntouched = (): void => {
  expect(readFileSync(deps.docsReport, 'utf8')).toBe(FULL_MD)
  expect(readdirSync(path.join(root, 'docs', 'benchmarks'))).toEqual(['alpha-fig.svg'])
  expect(readFileSync(path.join(root, 'docs', 'benchmarks', 'alpha-fig.svg'), 'utf8')).toBe('<svg>full</svg>')
  expect(readFileSync(path.join(resultsDir, 'latest.json'), 'utf8')).toBe(FULL_JSON)
}

describe('which report a run writes', () => {
  it('--quick --json out.json leaves the full report alone and writes its own under the results dir', async () => {
    const json = path.join(root, 'out.json')
    expect(await run('--quick', '--json', json)).toBe(0)
    docsUntouched()
    const report = JSON.parse(readFileSync(json, 'utf8'))
    expect(validateReport(report)).toEqual([])
    expect(report.mode).toBe('quick')
    expect(report.benchmarks.map((b: { name: string }) => b.name)).toEqual(['alpha'])
    expect(JSON.parse(readFileSync(path.join(resultsDir, 'latest-quick.json'), 'utf8')).mode).toBe('quick')
    const md = readFileSync(path.join(resultsDir, 'report-quick.md'), 'utf8')
    expect(md).toContain('**quick** mode')
    expect(md).toContain('report-quick/alpha-fig.svg')
    expect(existsSync(path.join(resultsDir, 'report-quick', 'alpha-fig.svg'))).toBe(true)
  })

  it('--only (full mode) and --tiny leave the full report alone', async () => {
    expect(await run('--only', 'beta')).toBe(0)
    docsUntouched()
    expect(existsSync(path.join(resultsDir, 'report-partial.md'))).toBe(true)
    expect(await run('--tiny')).toBe(0)
    docsUntouched()
    expect(existsSync(path.join(resultsDir, 'report-tiny.md'))).toBe(true)
  })

  it('refuses to point a quick or partial run at the full report', async () => {
    expect(await run('--quick', '--md', deps.docsReport)).toBe(2)
    expect(await run('--only', 'alpha', '--md', deps.docsReport)).toBe(2)
    expect(await run('--quick', '--write-docs')).toBe(2)
    expect(await run('--tiny', '--write-docs')).toBe(2)
    docsUntouched()
    expect(() => parseArgs(['--quick', '--write-docs'])).toThrow(/full run/)
  })

  it('a full run regenerates the full report', async () => {
    expect(await run()).toBe(0)
    const md = readFileSync(deps.docsReport, 'utf8')
    expect(md).toContain('**full** mode')
    expect(md).toContain('`beta`')
    expect(readdirSync(path.join(root, 'docs', 'benchmarks')).sort()).toEqual(['alpha-fig.svg', 'beta-fig.svg'])
    expect(JSON.parse(readFileSync(path.join(resultsDir, 'latest.json'), 'utf8')).benchmarks).toHaveLength(2)
  })

  it('--only --write-docs regenerates it from the last full results plus the fresh ones', async () => {
    expect(await run()).toBe(0)
    deps = { ...deps, benchmarks: [fake('alpha', true, 100), fake('beta', false, 300)] }
    expect(await run('--only', 'beta')).toBe(0)
    expect(readFileSync(deps.docsReport, 'utf8')).not.toContain('300')
    expect(await run('--only', 'beta', '--write-docs')).toBe(0)
    const latest = JSON.parse(readFileSync(path.join(resultsDir, 'latest.json'), 'utf8'))
    expect(latest.benchmarks.map((b: { name: string }) => b.name)).toEqual(['alpha', 'beta'])
    expect(latest.benchmarks[1].headlines[0].value).toBe(300)
    expect(readFileSync(deps.docsReport, 'utf8')).toContain('300')
  })

  it('outputsOf: only a full run without --only writes the docs', () => {
    const o = (argv: string[]) => outputsOf(parseArgs([...argv, '--results-dir', resultsDir], deps.benchmarks), deps.docsReport)
    expect(o([]).writesDocs).toBe(true)
    expect(o([]).md).toBe(deps.docsReport)
    for (const argv of [['--quick'], ['--tiny'], ['--only', 'alpha'], ['--quick', '--only', 'alpha']]) {
      const out = o(argv)
      expect(out.writesDocs).toBe(false)
      expect(out.md).not.toBe(deps.docsReport)
      expect(path.dirname(out.md!)).toBe(resultsDir)
      expect(out.latest).not.toBe(path.join(resultsDir, 'latest.json'))
    }
    expect(o(['--quick', '--no-md']).md).toBeUndefined()
  })
})
