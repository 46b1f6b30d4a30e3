/**
 * Generates docs/benchmarks.md (and its SVG figures under docs/benchmarks/) from a results JSON.
 *
 *   node benchmarks/dist/report.js [benchmarks/results/latest.json] [--out docs/benchmarks.md]
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { fmt, type BenchResult, type Report } from './harness.js'
import { renderFigure } from './svg.js'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '..', '..')
export const resultsDir = path.join(repoRoot, 'benchmarks', 'results')

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function table(columns: string[], rows: Array<Array<string | number | null>>): string {
  const head = `| ${columns.map(mdEscape).join(' | ')} |`
  const sep = `| ${columns.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`
  const body = rows.map((r) => `| ${r.map((c) => mdEscape(fmt(c))).join(' | ')} |`)
  return [head, sep, ...body].join('\n')
}

/** Known reasons behind shortfalls, keyed by a substring of the headline metric. */
const WHY: Array<[RegExp, string]> = [
  [/relaxed put.*raw/i, 'A Causeway put does much more than a raw LevelDB put: it validates and encodes the value with its version and nearest dependencies, writes the key state and a replication-log entry in one atomic batch, updates the cache, the Lamport clock and the version vectors, and passes through the session\'s ordering queue and the shard\'s commit queue. With one writer nothing amortises that per-put work; with many writers batches get larger and the gap narrows.'],
  [/get.*raw/i, 'Gets go through the session (causal-context bookkeeping) before the cache; a cold or too-small cache falls back to the LevelDB read path plus that overhead.'],
  [/fsync.*writers vs 1 writer|group commit/i, 'Group commit only helps when writers overlap in time; the ratio is bounded by how many writers are waiting when an fsync completes and by the cost of one fsync on this disk (a fast, write-cached virtual disk makes a single fsync cheap, so batching gains less).'],
  [/visibility p(50|99)/i, 'Visibility includes the local commit at the origin, the replication engine\'s batching delay, the emulated one-way latency, decoding, dep_check and the apply batch at the receiver, all on a 2-core machine that also runs the load generator and, for libp2p, Noise encryption and Yamux framing in both processes. The tail grows when the receiver applies in large rounds.'],
  [/writes\/s|throughput.*replicat/i, 'Site-to-site throughput on one 2-core machine is CPU bound: both site processes, the load generator, Noise encryption and Yamux framing share two cores, and every replicated write is decoded, dependency-checked and committed at the receiver. The throughput table also shows the local put rate at the writer: when the two are close, the origin site\'s own put path (sessions, metadata, commit) is the limit, not replication.'],
  [/pouchdb|orbitdb/i, 'See the peers table: peer systems run with their default settings on the same machine; a Causeway row marked skipped means Causeway itself did not finish replicating within the time limit in this run.'],
  [/postgres/i, 'Each "boot a VM" call is about twenty ORM operations on Causeway (a four-insert transaction, a joined read over four tables, an action insert, and four compare-and-swap updates each followed by a read), each one a trip through the session, the engine\'s group commit and the ORM\'s index maintenance in JavaScript, while PostgreSQL runs twelve compact statements in C. On one 2-core machine all Causeway sites share the CPU, so per-operation cost, not the WAN, dominates until latencies are much larger than the emulated 10-50 ms.'],
  [/sqlite/i, 'SQLite in-process is a single-site upper bound: a C engine with no replication metadata, no version vectors and no per-column merge state; the ORM on Causeway pays for all of these on every call.'],
  [/completion/i, 'Completion time at high latency includes waiting for cross-site visibility where the workload reads other sites\' writes.'],
]

function why(metric: string): string | undefined {
  for (const [re, text] of WHY) if (re.test(metric)) return text
  return undefined
}

function benchSection(b: BenchResult, figDir: string, figRel: string): string {
  const out: string[] = []
  out.push(`## \`${b.name}\``)
  out.push('')
  out.push(b.description)
  out.push('')
  const when = b.ranAt ? ` on ${b.ranAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}${b.mode ? `, ${b.mode} mode` : ''}` : ''
  const statusLine =
    b.status === 'ok'
      ? `Status: ran${when} (${(b.durationMs / 1000).toFixed(1)} s).`
      : b.status === 'partial'
        ? `Status: partially ran${when} (${(b.durationMs / 1000).toFixed(1)} s) — some parts were skipped, see below.`
        : b.status === 'skipped'
          ? `Status: **skipped** — ${b.reason ?? 'no reason given'}`
          : `Status: **failed** — ${b.reason ?? 'unknown error'}`
  out.push(statusLine)
  out.push('')
  const params = Object.entries(b.params)
  if (params.length) {
    out.push('Parameters: ' + params.map(([k, v]) => `${k} = \`${typeof v === 'string' ? v : JSON.stringify(v)}\``).join(', ') + '.')
    out.push('')
  }
  if (b.headlines.length) {
    out.push(table(
      ['metric', 'value', 'unit', 'goal', 'met'],
      b.headlines.map((h) => [h.metric, h.value, h.unit, h.goal ?? '', h.met === undefined ? '' : h.met ? 'yes' : '**no**']),
    ))
    out.push('')
  }
  for (const t of b.tables) {
    out.push(`### ${t.title}`)
    out.push('')
    out.push(table(t.columns, t.rows))
    out.push('')
    if (t.conclusion) {
      out.push(`*Reading it:* ${t.conclusion}`)
      out.push('')
    }
  }
  for (const f of b.figures) {
    const file = `${b.name}-${f.id}.svg`
    writeFileSync(path.join(figDir, file), renderFigure(f))
    out.push(`### Figure: ${f.title}`)
    out.push('')
    out.push(`![${mdEscape(f.title)}](${figRel}/${file})`)
    out.push('')
    out.push(`*What to conclude:* ${f.conclusion}`)
    out.push('')
    out.push(`*Reproduce:* \`${f.reproduce}\``)
    out.push('')
  }
  if (b.skipped.length) {
    out.push('Skipped parts:')
    out.push('')
    for (const s of b.skipped) out.push(`- ${s.what}: ${s.reason}`)
    out.push('')
  }
  if (b.notes.length) {
    out.push('Notes:')
    out.push('')
    for (const n of b.notes) out.push(`- ${n}`)
    out.push('')
  }
  return out.join('\n')
}

function discussion(report: Report): string {
  const out: string[] = ['## Where Causeway is behind, and why', '']
  const missed = report.benchmarks.flatMap((b) => b.headlines.filter((h) => h.met === false).map((h) => ({ b, h })))
  if (missed.length === 0) {
    out.push('Every goal that was measured in this run was met. Goals that could not be measured (skipped parts) are listed in the summary above.')
  } else {
    out.push('Goals missed in this run (figures from the tables above; nothing was tuned to flatter):')
    out.push('')
    const groups = new Map<string, string[]>()
    for (const { b, h } of missed) {
      const reason = why(h.metric) ?? ''
      if (!groups.has(reason)) groups.set(reason, [])
      groups.get(reason)!.push(`**${b.name} — ${h.metric}**: ${fmt(h.value)} ${h.unit} (goal ${h.goal})`)
    }
    for (const [reason, items] of groups) {
      out.push(`- ${items.join('; ')}.${reason ? ' *Why:* ' + reason : ''}`)
    }
  }
  out.push('')
  const stalls = report.benchmarks.flatMap((b) => b.skipped.filter((s) => /pendingIn=|visible at b|applied at b|writes within/.test(s.reason)).map((s) => `${b.name} / ${s.what}`))
  if (stalls.length) {
    out.push(`**Replication did not complete** within the time limit in ${stalls.length} place(s) (${stalls.join('; ')}): writes stayed in the receiver's \`pendingIn\` (waiting for dependencies) or the sender's \`pendingOut\`. That is a liveness bug of the replication engine in the build that was measured, not a slow network, and the affected figures are missing rather than estimated.`)
    out.push('')
  }
  const skipped = report.benchmarks.filter((b) => b.status === 'skipped' || b.status === 'failed' || b.skipped.length > 0)
  if (skipped.length) {
    out.push('Not measured in this run:')
    out.push('')
    for (const b of skipped) {
      if (b.status === 'skipped' || b.status === 'failed') out.push(`- \`${b.name}\` (${b.status}): ${b.reason ?? ''}`)
      for (const s of b.skipped) out.push(`- \`${b.name}\` / ${s.what}: ${s.reason}`)
    }
    out.push('')
  }
  out.push('General caveats that apply to every figure:')
  out.push('')
  out.push('- All sites of a multi-site run share one machine (2 cores here): replication, the load generator and the receiving site compete for the same CPU, so throughput figures are lower bounds for a real deployment where each site has its own machine, and latency percentiles include CPU queueing.')
  out.push('- Emulated latency is added per chunk (TCP delay proxy) or per frame (sim network); there is no bandwidth limit, packet loss or jitter unless stated, so real WANs will look worse for every system, not only Causeway.')
  out.push('- Causeway\'s always-available design trades consistency for latency: a control-plane step that must be linearizable (compare-and-swap) runs at the row\'s home site, so requests arriving at another site pay a forward or retry; the ORM adapter documents this.')
  out.push('- In multi-site runs on one machine, applying the other sites\' replicated writes competes with local calls for the same two cores. With more emulated latency, more of that apply work happens after the measured calls complete, so Causeway can look faster at 50 ms than at 0 or 10 ms; read the latency comparisons as "does not get slower", not as a speed-up.')
  out.push('- Ratios (Causeway vs raw LevelDB, vs peers) are measured in the same run back to back; absolute numbers vary from run to run on shared machines by 10–30 %.')
  out.push('')
  return out.join('\n')
}

export function renderMarkdown(report: Report, options: { figDir: string; figRel: string; resultsRel: string }): string {
  mkdirSync(options.figDir, { recursive: true })
  for (const f of readdirSync(options.figDir)) if (f.endsWith('.svg')) rmSync(path.join(options.figDir, f))
  const m = report.machine
  const out: string[] = []
  out.push('# Benchmarks')
  out.push('')
  out.push('<!-- Generated by benchmarks/src/report.ts from the results JSON; do not edit by hand. Regenerate: `npm run bench` (or `node benchmarks/dist/report.js`). -->')
  out.push('')
  const merged = new Set(report.benchmarks.map((b) => b.ranAt ?? report.startedAt)).size > 1
  out.push(`Run: **${report.mode}** mode, ${report.startedAt} → ${report.finishedAt}; ${merged ? 'last' : ''} command \`${['npm run bench --', ...report.argv].join(' ')}\`${merged ? ' (the other benchmarks come from earlier runs of the same mode; each section says when it ran)' : ''}; results in \`${options.resultsRel}\`.`)
  out.push('')
  out.push('Machine:')
  out.push('')
  out.push(table(['', ''], [
    ['CPU', m.cpu],
    ['cores', m.cores],
    ['memory', `${m.memoryGiB} GiB`],
    ['Node.js', m.node],
    ['OS', m.os],
  ]))
  out.push('')
  out.push('How to run: `npm run bench` (everything, tens of minutes), `npm run bench -- --quick` (a representative subset, under 5 minutes on 2 cores), `--only kv-micro,peers`, `--json out.json`, `--list` (only a full run rewrites this page; quick and `--only` runs write their own report under `benchmarks/results/`). PostgreSQL: `bash benchmarks/scripts/postgres.sh` (installs Debian\'s postgresql if missing and starts a throwaway server; the harness starts it itself when the binaries are present). Every benchmark runs a warm-up, then repeats (3 in quick mode, 5 in full mode) and reports the median with min–max; comparisons are ratios measured in the same run.')
  out.push('')
  out.push('## Method')
  out.push('')
  out.push('- Every site, peer and baseline runs on this one machine. Multi-site runs use either the in-process `@causeway/sim` network (real encoded frames, per-frame one-way latency) or one OS process per site replicating over `@causeway/libp2p` on loopback (TCP + Noise + Yamux) with the adapter\'s `latencyMs` option; counting TCP proxies in front of each site measure bytes on the wire. The central PostgreSQL is reached through a TCP delay proxy (`benchmarks/src/delay-proxy.ts`) that delays every chunk by the one-way latency in each direction.')
  out.push('- Timing uses `performance.now()`; cross-process visibility uses `performance.timeOrigin + performance.now()` of both processes (one machine, one clock).')
  out.push('- Numbers are medians over repetitions with min–max; latency percentiles are computed per repetition and then the median is taken. Nothing is asserted: goals are reported as met or not.')
  out.push('')
  out.push('## Summary')
  out.push('')
  const rows: Array<Array<string | number | null>> = []
  for (const b of report.benchmarks) {
    if (b.status === 'skipped' || b.status === 'failed') rows.push([b.name, `**${b.status}**: ${b.reason ?? ''}`, null, '', '', ''])
    for (const h of b.headlines) rows.push([b.name, h.metric, h.value, h.unit, h.goal ?? '', h.met === undefined ? '' : h.met ? 'yes' : '**no**'])
    for (const sk of b.skipped) rows.push([b.name, `not measured: ${sk.what} (see below)`, null, '', '', ''])
  }
  out.push(table(['benchmark', 'metric', 'value', 'unit', 'goal', 'met'], rows))
  out.push('')
  for (const b of report.benchmarks) out.push(benchSection(b, options.figDir, options.figRel))
  out.push(discussion(report))
  return out.join('\n')
}

/** Write docs/benchmarks.md (or `outFile`) from a report. */
export function writeMarkdown(report: Report, outFile = path.join(repoRoot, 'docs', 'benchmarks.md'), resultsFile?: string): string {
  // Figures go next to the report, in a directory named after it (docs/benchmarks.md -> docs/benchmarks/),
  // so that two reports in one directory never delete each other's SVGs.
  const base = path.basename(outFile)
  const figRel = base.endsWith('.md') && base.length > 3 ? base.slice(0, -3) : `${base}-figures`
  const figDir = path.join(path.dirname(outFile), figRel)
  const resultsRel = resultsFile ? path.relative(repoRoot, resultsFile) : 'benchmarks/results/latest.json'
  const md = renderMarkdown(report, { figDir, figRel, resultsRel })
  mkdirSync(path.dirname(outFile), { recursive: true })
  writeFileSync(outFile, md)
  return md
}

/** Validate the shape of a report (used by the CLI before writing and by the tests). */
export function validateReport(r: unknown): string[] {
  const errors: string[] = []
  const o = r as Partial<Report>
  if (!o || typeof o !== 'object') return ['not an object']
  if (o.schema !== 'causeway-bench/1') errors.push('schema')
  if (!o.machine || typeof o.machine.cpu !== 'string' || typeof o.machine.cores !== 'number' || typeof o.machine.node !== 'string') errors.push('machine')
  if (!Array.isArray(o.benchmarks)) errors.push('benchmarks')
  for (const b of o.benchmarks ?? []) {
    if (typeof b.name !== 'string') errors.push('benchmark.name')
    if (!['ok', 'partial', 'skipped', 'failed'].includes(b.status)) errors.push(`${b.name}.status`)
    for (const t of b.tables ?? []) {
      for (const row of t.rows) if (row.length !== t.columns.length) errors.push(`${b.name}.${t.id}: row width`)
    }
    for (const f of b.figures ?? []) {
      if (!f.conclusion || !f.reproduce) errors.push(`${b.name}.${f.id}: conclusion/reproduce`)
    }
  }
  return errors
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  let input = path.join(resultsDir, 'latest.json')
  let out = path.join(repoRoot, 'docs', 'benchmarks.md')
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') out = path.resolve(args[++i] ?? out)
    else input = path.resolve(args[i]!)
  }
  const report = JSON.parse(readFileSync(input, 'utf8')) as Report
  const errors = validateReport(report)
  if (errors.length) {
    process.stderr.write(`${input}: not a valid report: ${errors.join(', ')}\n`)
    process.exit(2)
  }
  writeMarkdown(report, out, input)
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(String(e instanceof Error ? e.stack : e) + '\n')
    process.exit(1)
  })
}
