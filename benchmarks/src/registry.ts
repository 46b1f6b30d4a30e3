import type { Benchmark } from './harness.js'
import { kvMicro } from './benches/kv-micro.js'

/** Every benchmark, in run order. */
export const benchmarks: Benchmark[] = [kvMicro]
