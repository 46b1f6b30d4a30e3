#!/usr/bin/env node
/**
 * `npm run bench [-- options]` — runs the benchmark suite and writes the results JSON and the
 * markdown report. Only a full run of every benchmark regenerates the committed full report
 * (docs/benchmarks.md, its SVGs and benchmarks/results/latest.json); a quick, tiny or --only run
 * writes its own report under benchmarks/results/ and says where. See `--help`.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  SkipError,
  UsageError,
  cleanupAll,
  errMsg,
  fmt,
  installSignalHandlers,
  interrupted,
  machineInfo,
  makeTmpDir,
  rmDir,
  withTimeout,
  type BenchContext,
  type BenchResult,
  type Benchmark,
  type Mode,
  type Report,
} from './harness.js'
import { createProgress } from './progress.js'
import { benchmarks } from './registry.js'
import { resultsDir as defaultResultsDir, validateReport, writeMarkdown, repoRoot } from './report.js'

export interface CliOptions {
  mode: Mode
  only?: string[]
  json?: string
  list: boolean
  help: boolean
  md?: string
  noMd: boolean
  resultsDir: string
  reps?: number
  progress?: boolean
  /** Regenerate docs/benchmarks.md from an --only run of full mode (merged with the last full results). */
  writeDocs: boolean
}

/** What a run reads and writes (see outputsOf). */
export interface RunOutputs {
  /** Whether this run regenerates the full report (docs/benchmarks.md and latest.json). */
  writesDocs: boolean
  /** The results JSON an --only run merges with. */
  mergeFrom: string
  /** The results JSON this run writes (the full report's data only when writesDocs). */
  latest: string
  /** The markdown report, unless --no-md. */
  md: string | undefined
}

/** Injected by tests: the benchmarks to run and where the full report lives. */
export interface CliDeps {
  benchmarks: readonly Benchmark[]
  docsReport: string
}
const defaultDeps: CliDeps = { benchmarks, docsReport: path.join(repoRoot, 'docs', 'benchmarks.md') }

const HELP = `Usage: npm run bench -- [options]

  --quick             a representative subset, fewer repetitions (< 5 minutes on 2 cores)
  --only a,b          run only these benchmarks (see --list); combines with --quick
  --json <file>       also write the results JSON to <file>
  --list              list the benchmarks and exit
  --reps <n>          override the number of repetitions (1..100)
  --md <file>         write the markdown report there (default: docs/benchmarks.md for a full run,
                      benchmarks/results/report-<mode>.md otherwise; never the full report's file
                      from a quick, tiny or --only run)
  --no-md             do not regenerate the markdown report
  --write-docs        with --only in full mode: regenerate docs/benchmarks.md (merged with the
                      last full results); a full run without --only always does
  --results-dir <dir> where latest.json and timestamped results go (default benchmarks/results)
  --tiny              tiny parameters (harness self-test; numbers are meaningless)
  --no-progress       plain progress lines even on a terminal
  --help              this text
`

export function parseArgs(argv: string[], benchmarks: readonly Benchmark[] = defaultDeps.benchmarks): CliOptions {
  const o: CliOptions = { mode: 'full', list: false, help: false, noMd: false, resultsDir: defaultResultsDir, writeDocs: false }
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1]
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const take = () => (inline !== undefined ? inline : value(i++, flag))
    switch (flag) {
      case '--quick':
        if (o.mode === 'tiny') throw new UsageError('--quick and --tiny are mutually exclusive')
        o.mode = 'quick'
        break
      case '--tiny':
        if (o.mode === 'quick') throw new UsageError('--quick and --tiny are mutually exclusive')
        o.mode = 'tiny'
        break
      case '--only': {
        const names = take().split(',').map((s) => s.trim()).filter(Boolean)
        if (names.length === 0) throw new UsageError('--only needs at least one benchmark name')
        o.only = [...(o.only ?? []), ...names]
        break
      }
      case '--json':
        o.json = take()
        break
      case '--md':
        o.md = take()
        break
      case '--no-md':
        o.noMd = true
        break
      case '--write-docs':
        o.writeDocs = true
        break
      case '--results-dir':
        o.resultsDir = path.resolve(take())
        break
      case '--reps': {
        const s = take()
        const n = Number(s)
        if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError(`--reps must be an integer from 1 to 100, got '${s}'`)
        o.reps = n
        break
      }
      case '--list':
        o.list = true
        break
      case '--no-progress':
        o.progress = false
        break
      case '--help':
      case '-h':
        o.help = true
        break
      default:
        throw new UsageError(`unknown option '${a}' (see --help)`)
    }
  }
  if (o.writeDocs && o.mode !== 'full') throw new UsageError(`--write-docs needs a full run: a ${o.mode} run never replaces the full report`)
  if (o.writeDocs && o.noMd) throw new UsageError('--write-docs and --no-md contradict each other')
  if (o.only) {
    const known = new Set(benchmarks.map((b) => b.name))
    const unknown = o.only.filter((n) => !known.has(n))
    if (unknown.length) throw new UsageError(`unknown benchmark${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')}; known: ${[...known].join(', ')}`)
  }
  return o
}

/**
 * Where a run's results go. The committed full report (docs/benchmarks.md, its SVGs, latest.json)
 * is replaced only by a full run of every benchmark, or a full --only run given --write-docs; any
 * other run gets files of its own under the results directory, so `--quick` can never overwrite
 * the full figures with quick ones.
 */
export function outputsOf(o: CliOptions, docsReport = defaultDeps.docsReport): RunOutputs {
  const writesDocs = o.mode === 'full' && (!o.only || o.writeDocs)
  const tag = o.mode === 'full' ? 'partial' : o.mode
  const fullLatest = path.join(o.resultsDir, 'latest.json')
  const latest = writesDocs ? fullLatest : path.join(o.resultsDir, `latest-${tag}.json`)
  // A full --only run refreshes some benchmarks of the full results; a quick one those of the last quick run.
  const mergeFrom = o.mode === 'full' ? fullLatest : latest
  let md: string | undefined
  if (!o.noMd) {
    md = o.md ? path.resolve(o.md) : writesDocs ? docsReport : path.join(o.resultsDir, `report-${tag}.md`)
    if (!writesDocs && md === path.resolve(docsReport)) {
      throw new UsageError(`only a full run writes ${path.relative(process.cwd(), docsReport)}${o.mode === 'full' ? ' (add --write-docs to regenerate it from an --only run)' : ''}`)
    }
  }
  return { writesDocs, mergeFrom, latest, md }
}

export function selectBenchmarks(o: CliOptions, benchmarks: readonly Benchmark[] = defaultDeps.benchmarks): readonly Benchmark[] {
  if (o.only) return benchmarks.filter((b) => o.only!.includes(b.name))
  if (o.mode === 'quick') return benchmarks.filter((b) => b.quick)
  return benchmarks
}

function reproduceCommand(o: CliOptions, name: string): string {
  const parts = ['npm run bench --']
  if (o.mode === 'quick') parts.push('--quick')
  if (o.mode === 'tiny') parts.push('--tiny')
  parts.push('--only', name)
  return parts.join(' ')
}

const BENCH_TIMEOUT_MS: Record<Mode, number> = { tiny: 120_000, quick: 240_000, full: 5_400_000 }

export async function runBenchmark(b: Benchmark, o: CliOptions, progress = createProgress(process.stderr, o.progress ?? process.stderr.isTTY === true)): Promise<BenchResult> {
  const result: BenchResult = {
    name: b.name,
    ranAt: new Date().toISOString(),
    mode: o.mode,
    description: b.description,
    status: 'ok',
    durationMs: 0,
    params: {},
    headlines: [],
    tables: [],
    figures: [],
    notes: [],
    skipped: [],
  }
  const tmp = makeTmpDir(b.name)
  const ctx: BenchContext = {
    mode: o.mode,
    tmp,
    progress: (done, total, label) => progress.update(done, total, label),
    log: (msg) => process.stderr.write(`[${b.name}] ${msg}\n`),
    table: (t) => result.tables.push(t),
    figure: (f) => result.figures.push(f),
    headline: (h) => result.headlines.push(h),
    note: (n) => result.notes.push(n),
    skip: (what, reason) => result.skipped.push({ what, reason }),
    param: (k, v) => (result.params[k] = v),
    pick: (v) => {
      const base = o.mode === 'tiny' ? (v.tiny ?? v.quick) : o.mode === 'quick' ? v.quick : v.full
      return base
    },
    reps: (v) => o.reps ?? (o.mode === 'tiny' ? (v.tiny ?? v.quick) : o.mode === 'quick' ? v.quick : v.full),
    reproduce: reproduceCommand(o, b.name),
    signal: interrupted,
  }
  progress.start(b.name)
  const t0 = performance.now()
  try {
    await withTimeout(b.run(ctx), BENCH_TIMEOUT_MS[o.mode], b.name)
    if (result.skipped.length > 0) result.status = 'partial'
  } catch (e) {
    if (e instanceof SkipError) {
      result.status = 'skipped'
      result.reason = e.message
    } else {
      result.status = 'failed'
      result.reason = errMsg(e)
      if (process.env['BENCH_DEBUG']) process.stderr.write(`${e instanceof Error ? e.stack : e}\n`)
    }
  } finally {
    result.durationMs = performance.now() - t0
    rmDir(tmp)
  }
  const tail = result.status === 'ok' ? 'done' : result.status === 'partial' ? `done, ${result.skipped.length} part(s) skipped` : `${result.status}: ${result.reason}`
  progress.stop(`[${b.name}] ${tail} (${(result.durationMs / 1000).toFixed(1)} s)`)
  return result
}

function summaryText(report: Report): string {
  const rows: string[][] = [['benchmark', 'metric', 'value', 'goal', 'met']]
  for (const b of report.benchmarks) {
    if (b.headlines.length === 0) rows.push([b.name, b.status === 'ok' ? '(no headline)' : `${b.status}: ${b.reason ?? ''}`.slice(0, 90), '', '', ''])
    for (const h of b.headlines) rows.push([b.name, h.metric, `${fmt(h.value)} ${h.unit}`, h.goal ?? '', h.met === undefined ? '' : h.met ? 'yes' : 'NO'])
    for (const s of b.skipped) rows.push([b.name, `skipped ${s.what}`, s.reason.slice(0, 70), '', ''])
  }
  const widths = rows[0]!.map((_, i) => Math.min(70, Math.max(...rows.map((r) => r[i]!.length))))
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

/**
 * An --only run replaces those benchmarks in latest.json and keeps the others from the previous
 * run of the same mode (each result carries its own ranAt), so regenerating one benchmark does not
 * drop the rest of the report. Without --only the run stands alone.
 */
function mergeWithLatest(o: CliOptions, results: BenchResult[], from: string, benchmarks: readonly Benchmark[]): BenchResult[] {
  if (!o.only) return results
  try {
    const prev = JSON.parse(readFileSync(from, 'utf8')) as Report
    if (prev.schema !== 'causeway-bench/1' || prev.mode !== o.mode) return results
    const fresh = new Map(results.map((r) => [r.name, r]))
    const order = benchmarks.map((b) => b.name)
    const merged = [...prev.benchmarks.filter((b) => !fresh.has(b.name)).map((b) => ({ ...b, ranAt: b.ranAt ?? prev.startedAt })), ...results]
    return merged.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))
  } catch {
    return results
  }
}

/** Keep the results directory small: latest.json plus the newest few timestamped files. */
function pruneResults(dir: string, keep = 5): void {
  const files = readdirSync(dir).filter((f) => /^results-.*\.json$/.test(f)).sort()
  for (const f of files.slice(0, Math.max(0, files.length - keep))) rmSync(path.join(dir, f))
}

export async function main(argv = process.argv.slice(2), deps: CliDeps = defaultDeps): Promise<number> {
  const { benchmarks } = deps
  let o: CliOptions
  let out: RunOutputs
  try {
    o = parseArgs(argv, benchmarks)
    out = outputsOf(o, deps.docsReport)
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench: ${e.message}\n`)
      return 2
    }
    throw e
  }
  if (o.help) {
    process.stdout.write(HELP)
    return 0
  }
  if (o.list) {
    for (const b of benchmarks) process.stdout.write(`${b.name.padEnd(20)} ${b.quick ? '[quick] ' : '        '}${b.description.split(/[.:] /)[0]!.slice(0, 110)}\n`)
    return 0
  }
  const machine = machineInfo()
  process.stderr.write(`Causeway benchmarks (${o.mode}) on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}\n`)
  const startedAt = new Date().toISOString()
  const selected = selectBenchmarks(o, benchmarks)
  const results: BenchResult[] = []
  const progress = createProgress(process.stderr, o.progress ?? process.stderr.isTTY === true)
  for (const b of selected) {
    if (interrupted.aborted) break
    results.push(await runBenchmark(b, o, progress))
    await cleanupAll()
  }
  const report: Report = { schema: 'causeway-bench/1', startedAt, finishedAt: new Date().toISOString(), mode: o.mode, argv, machine, benchmarks: mergeWithLatest(o, results, out.mergeFrom, benchmarks) }
  const errors = validateReport(report)
  if (errors.length) process.stderr.write(`warning: report has shape problems: ${errors.join(', ')}\n`)

  mkdirSync(o.resultsDir, { recursive: true })
  // indented, but arrays of numbers (chart points) on one line: small files, readable diffs
  const json = JSON.stringify(report, null, 1).replace(/\[\s+([-\d.eE+,\s]+?)\s+\]/g, (_, inner: string) => `[${inner.replace(/\s+/g, '')}]`)
  const stamp = startedAt.replace(/[:.]/g, '-')
  const latest = out.latest
  writeFileSync(latest, json)
  writeFileSync(path.join(o.resultsDir, `results-${stamp}.json`), json)
  pruneResults(o.resultsDir)
  if (o.json) writeFileSync(path.resolve(o.json), json)
  if (out.md) {
    writeMarkdown(report, out.md, latest)
    process.stderr.write(`report: ${path.relative(process.cwd(), out.md)}${out.writesDocs ? '' : ` (a ${o.only ? 'partial' : o.mode} run: ${path.relative(process.cwd(), deps.docsReport)} is left as it is)`}\n`)
  }
  process.stdout.write(`\nMachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}\n\n`)
  process.stdout.write(summaryText(report) + '\n\n')
  process.stdout.write(`results: ${path.relative(process.cwd(), latest)}${o.json ? `, ${o.json}` : ''}\n`)
  const failed = results.filter((r) => r.status === 'failed')
  if (failed.length) process.stderr.write(`${failed.length} benchmark(s) failed: ${failed.map((f) => f.name).join(', ')}\n`)
  return failed.length ? 1 : 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  installSignalHandlers()
  main()
    .then(async (code) => {
      await cleanupAll()
      process.exit(code)
    })
    .catch(async (e) => {
      process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`)
      await cleanupAll()
      process.exit(1)
    })
}
