/** `causeway simulate`: argument parsing and output around simulate() (simulate.ts). */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { CausewayError } from '@causeway/core'
import { formatSimulation, simulate, type Workload } from './simulate.js'

export const SIMULATE_USAGE = `  simulate --seed N [--sites 5] [--minutes 60] [--workload ./w.js] [--seeds A-B] [--trace]
                                      seeded multi-site run in virtual time with faults, checked
                                      for causal violations (exit 1 on any); --seeds runs a range
`

function usage(message: string): never {
  throw new CausewayError('INVALID_ARGUMENT', message)
}

function intArg(name: string, raw: string | undefined, dflt: number, min: number, max: number): number {
  if (raw === undefined) return dflt
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min || n > max) usage(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`)
  return n
}

/** Loads a user workload: default export (or `workload`) is a Workload or a bare step function. */
export async function loadWorkload(path: string): Promise<Workload> {
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>
  } catch (e) {
    throw new CausewayError('INVALID_ARGUMENT', `cannot load workload ${path}: ${String(e)}`, { cause: e })
  }
  const w = mod.default ?? mod.workload
  if (typeof w === 'function') return { step: w as Workload['step'] }
  if (typeof w === 'object' && w !== null && typeof (w as Workload).step === 'function') return w as Workload
  return usage(`workload ${path} must export (default or 'workload') a step function or { step, conflicts? }`)
}

/** Returns the exit code: 0 when every seed ran clean, 1 when one did not. */
export async function cmdSimulate(args: string[]): Promise<number> {
  type Values = { seed?: string; seeds?: string; sites?: string; minutes?: string; workload?: string; trace?: boolean }
  let values: Values
  try {
    ;({ values } = parseArgs({
      args,
      options: { seed: { type: 'string' }, seeds: { type: 'string' }, sites: { type: 'string' }, minutes: { type: 'string' }, workload: { type: 'string' }, trace: { type: 'boolean' } },
      strict: true,
    }) as { values: Values })
  } catch (e) {
    return usage((e as Error).message)
  }
  let seeds: number[]
  if (values.seeds !== undefined) {
    const m = /^(\d+)-(\d+)$/.exec(values.seeds)
    if (m === null || Number(m[2]) < Number(m[1]) || Number(m[2]) - Number(m[1]) > 100_000) usage('--seeds must be a range A-B')
    seeds = []
    for (let s = Number(m![1]); s <= Number(m![2]); s++) seeds.push(s)
  } else {
    if (values.seed === undefined) usage('simulate needs --seed N (or --seeds A-B)')
    seeds = [intArg('seed', values.seed, 0, 0, 2 ** 32 - 1)]
  }
  const sites = intArg('sites', values.sites, 5, 2, 26)
  const minutesRaw = values.minutes ?? '60'
  const minutes = Number(minutesRaw)
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 10_000) usage(`--minutes must be a number in (0, 10000], got ${JSON.stringify(minutesRaw)}`)
  const workloadPath = values.workload
  let failed = 0
  for (const seed of seeds) {
    // A fresh workload per seed: a module's state must not leak from one run into the next.
    const workload = workloadPath === undefined ? undefined : await loadWorkload(workloadPath)
    const r = await simulate({ seed, sites, minutes, ...(workload ? { workload } : {}) })
    process.stdout.write(formatSimulation(r))
    if (values.trace === true) process.stdout.write(`  trace ${r.trace}\n`)
    if (r.violations.length > 0 || r.errors.length > 0) {
      failed++
      const w = workloadPath === undefined ? '' : ` --workload ${workloadPath}`
      process.stdout.write(`  replay: causeway simulate --seed ${seed} --sites ${sites} --minutes ${minutesRaw}${w}\n`)
    }
  }
  return failed === 0 ? 0 : 1
}
