import { performance } from 'node:perf_hooks'
import type { Database } from '@causeway/orm'
import { ComputeDb } from './db.js'

export interface CreateInstancesOptions {
  /** Calls in flight at once (default 1). */
  concurrency?: number
  /** Also run the boot sequence (4 compare-and-swap transitions to ACTIVE) in each call (default false). */
  boot?: boolean
  /** Project ids are `project-<i % projects>` (default 10). */
  projects?: number
  /** Prefix of instance uuids and names (default the site id), so concurrent runs do not collide. */
  prefix?: string
  /** Time source for the rows' timestamps (default the system clock). */
  clock?: { nowMs(): number }
}

/**
 * The "create N instances" workload of the ROME/Nova evaluation, for the benchmark harness: each
 * call is Nova's instance create (instance + metadata + system metadata + info cache in one
 * transaction, then a read with joins) plus the create action record. Returns per-call latencies in
 * milliseconds, in call order.
 */
export async function createInstances(db: Database, n: number, options: CreateInstancesOptions = {}): Promise<number[]> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a non-negative integer')
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1))
  const projects = Math.max(1, options.projects ?? 10)
  const prefix = options.prefix ?? db.siteId
  const svc = new ComputeDb(db, { clock: options.clock })
  const latencies = new Array<number>(n)
  let next = 0
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++
      if (i >= n) return
      const uuid = `${prefix}-vm-${String(i).padStart(8, '0')}`
      const project = `project-${i % projects}`
      const t0 = performance.now()
      await svc.instanceCreate({
        uuid,
        project_id: project,
        user_id: 'bench',
        display_name: `${prefix}-${i}`,
        memory_mb: 2048,
        vcpus: 2,
        root_gb: 20,
        image_ref: 'cirros-0.6',
        metadata: { role: 'bench', index: String(i) },
        system_metadata: { image_min_disk: '1', image_os_type: 'linux' },
        network_info: [{ id: `port-${i}`, address: 'fa:16:3e:00:00:01' }],
      })
      await svc.actionStart({ instance_uuid: uuid, action: 'create', request_id: `req-${uuid}`, user_id: 'bench', project_id: project })
      if (options.boot) await svc.bootInstance(uuid, `host-${i % 4}`, `node-${i % 4}`)
      latencies[i] = performance.now() - t0
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(n, 1)) }, worker))
  return latencies
}
