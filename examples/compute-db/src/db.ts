/**
 * The DB API of a Nova-like compute service (nova.db.api's shape), written once against
 * @causeway/orm. Nothing here knows which backend runs underneath: the same code serves SQLite and
 * any number of Causeway sites.
 */
import { randomUUID } from 'node:crypto'
import { CausewayError, type Database, type RowOfModel, type Where } from '@causeway/orm'
import {
  Instance,
  InstanceAction,
  InstanceActionEvent,
  InstanceInfoCache,
  InstanceMetadata,
  InstanceSystemMetadata,
  QuotaUsage,
} from './models.js'

export type InstanceRow = RowOfModel<typeof Instance>
export type KV = Record<string, string | null>
export type InstanceFull = InstanceRow & {
  metadata: KV
  system_metadata: KV
  info_cache: { network_info: unknown } | null
}

export interface ComputeDbOptions {
  /** Time source for created_at / updated_at / start_time (inject a fake one in tests). */
  clock?: { nowMs(): number }
  /** Instance uuid generator (default crypto.randomUUID). */
  newUuid?: () => string
  /** Home site of a project's quota usages (default: the local site). */
  projectHome?: (projectId: string) => string
}

export interface InstanceCreate {
  uuid?: string
  project_id: string
  user_id: string
  display_name: string
  memory_mb: number
  vcpus: number
  root_gb: number
  image_ref: string
  metadata?: KV
  system_metadata?: KV
  network_info?: unknown
}

export interface InstanceFilters {
  project_id?: string
  user_id?: string
  host?: string | null
  node?: string
  vm_state?: string | string[]
  task_state?: string | null | Array<string | null>
  display_name?: string
  created_since?: Date
  /** true: only soft-deleted instances; false (default): only live ones. */
  deleted?: boolean
}

export type SortKey = 'created_at' | 'display_name' | 'host' | 'memory_mb' | 'vm_state' | 'uuid'

export interface ListOptions {
  filters?: InstanceFilters
  sortKeys?: SortKey[]
  sortDirs?: Array<'asc' | 'desc'>
  limit?: number
  /** uuid of the last instance of the previous page (Nova's marker). */
  marker?: string
  columnsToJoin?: Array<'metadata' | 'system_metadata' | 'info_cache'>
}

/** Nova's boot sequence of task states, each step a compare-and-swap on the previous one. */
export const BOOT_SEQUENCE = ['scheduling', 'networking', 'block_device_mapping', 'spawning'] as const

const ALL_JOINS = ['metadata', 'system_metadata', 'info_cache'] as const

export class ComputeDb {
  private readonly clock: { nowMs(): number }
  private readonly newUuid: () => string
  private readonly projectHome: (projectId: string) => string

  constructor(
    readonly db: Database,
    options: ComputeDbOptions = {},
  ) {
    this.clock = options.clock ?? { nowMs: () => Date.now() }
    this.newUuid = options.newUuid ?? randomUUID
    this.projectHome = options.projectHome ?? (() => db.siteId)
  }

  private now(): Date {
    return new Date(this.clock.nowMs())
  }

  // ------------------------------------------------------------------ instances

  /** Create an instance with its metadata, system metadata and info cache in one transaction. */
  async instanceCreate(values: InstanceCreate): Promise<InstanceFull> {
    const uuid = values.uuid ?? this.newUuid()
    const now = this.now()
    return this.db.transaction(async (tx) => {
      await tx.repository(Instance).insert({
        uuid,
        project_id: values.project_id,
        user_id: values.user_id,
        display_name: values.display_name,
        host: null,
        node: null,
        vm_state: 'building',
        task_state: 'scheduling',
        power_state: 0,
        memory_mb: values.memory_mb,
        vcpus: values.vcpus,
        root_gb: values.root_gb,
        image_ref: values.image_ref,
        created_at: now,
      })
      const md = Object.entries(values.metadata ?? {}).map(([key, value]) => ({ instance_uuid: uuid, key, value }))
      if (md.length) await tx.repository(InstanceMetadata).insertMany(md)
      const smd = Object.entries(values.system_metadata ?? {}).map(([key, value]) => ({ instance_uuid: uuid, key, value }))
      if (smd.length) await tx.repository(InstanceSystemMetadata).insertMany(smd)
      await tx.repository(InstanceInfoCache).insert({ instance_uuid: uuid, network_info: (values.network_info ?? null) as never, updated_at: now })
      // Read back inside the transaction: the result is exactly what it created, served from its own writes.
      const row = await tx.repository(Instance).findOne({ uuid }, { with: [...ALL_JOINS] })
      if (!row) throw new CausewayError('NOT_FOUND', `instance ${uuid} not found`, { details: { uuid } })
      return shape(row as unknown as Record<string, unknown>)
    })
  }

  /** Nova's instance_get_by_uuid with joins; NOT_FOUND when there is no such (live) instance. */
  async instanceGetByUuid(uuid: string, options: { columnsToJoin?: ListOptions['columnsToJoin']; readDeleted?: boolean } = {}): Promise<InstanceFull> {
    const joins = options.columnsToJoin ?? [...ALL_JOINS]
    const row = await this.db.repository(Instance).findOne({ uuid }, { with: joins, withDeleted: options.readDeleted })
    if (!row) throw new CausewayError('NOT_FOUND', `instance ${uuid} not found`, { details: { uuid } })
    return shape(row as unknown as Record<string, unknown>)
  }

  /** Nova's instance_get_all_by_filters_sort: filters, sort keys, marker pagination, limit. */
  async instanceGetAllByFilters(options: ListOptions = {}): Promise<InstanceFull[]> {
    const f = options.filters ?? {}
    const where: Where<typeof Instance> = {}
    if (f.project_id !== undefined) where.project_id = f.project_id
    if (f.user_id !== undefined) where.user_id = f.user_id
    if (f.host !== undefined) where.host = f.host
    if (f.node !== undefined) where.node = f.node
    if (f.display_name !== undefined) where.display_name = f.display_name
    if (f.vm_state !== undefined) where.vm_state = Array.isArray(f.vm_state) ? { in: f.vm_state } : f.vm_state
    if (f.task_state !== undefined) where.task_state = Array.isArray(f.task_state) ? { in: f.task_state } : f.task_state
    if (f.created_since !== undefined) where.created_at = { gte: f.created_since }
    if (f.deleted === true) where.deleted = { ne: 0 }
    const keys = options.sortKeys ?? ['created_at']
    const dirs = options.sortDirs ?? keys.map(() => 'desc' as const)
    if (dirs.length !== keys.length) throw new CausewayError('INVALID_QUERY', 'sortDirs must match sortKeys')
    const orderBy = keys.map((k, i) => [k, dirs[i]!] as const)
    let after: InstanceRow | undefined
    if (options.marker !== undefined) {
      // Nova looks the marker up with read_deleted='yes': a deleted marker still positions the page.
      after = await this.db.repository(Instance).findOne({ uuid: options.marker }, { withDeleted: true })
      if (!after) throw new CausewayError('NOT_FOUND', `marker ${options.marker} not found`, { details: { marker: options.marker } })
    }
    const rows = await this.db.repository(Instance).find({
      where,
      orderBy,
      limit: options.limit,
      after,
      with: options.columnsToJoin ?? [...ALL_JOINS],
      withDeleted: f.deleted === true,
    })
    return rows.map((r) => shape(r as unknown as Record<string, unknown>))
  }

  async instanceGetAllByHost(host: string, node?: string): Promise<InstanceRow[]> {
    return this.db.repository(Instance).find({ where: node === undefined ? { host } : { host, node }, orderBy: [['created_at', 'asc']] })
  }

  /**
   * Nova's instance_update with expected_task_state / expected_vm_state: a compare-and-swap at the
   * instance's home site. A mismatch is CONFLICT (Nova's UnexpectedTaskStateError) with the
   * expected and actual states; a non-home site gets NOT_HOME_SITE (forward the call there).
   */
  async instanceUpdate(
    uuid: string,
    values: Partial<Omit<InstanceRow, 'uuid' | 'created_at' | 'deleted'>>,
    expected: { taskState?: Array<string | null> | string | null; vmState?: string[] | string } = {},
  ): Promise<InstanceRow> {
    const expect: Where<typeof Instance> = {}
    if (expected.taskState !== undefined) expect.task_state = Array.isArray(expected.taskState) ? { in: expected.taskState } : expected.taskState
    if (expected.vmState !== undefined) expect.vm_state = Array.isArray(expected.vmState) ? { in: expected.vmState } : expected.vmState
    const cas = expected.taskState !== undefined || expected.vmState !== undefined
    // One transaction: the row returned is the one this update wrote (not a later writer's), read
    // from the transaction's own writes.
    return this.db.transaction(async (tx) => {
      const repo = tx.repository(Instance)
      const n = await repo.update({ uuid }, { ...values, updated_at: this.now() }, cas ? { expect } : {})
      const row = await repo.findOne({ uuid })
      if (!row) throw new CausewayError('NOT_FOUND', `instance ${uuid} not found`, { details: { uuid } })
      if (n === 0) {
        throw new CausewayError('CONFLICT', `instance ${uuid}: unexpected task/vm state`, {
          details: { uuid, expected, actual: { taskState: row.task_state, vmState: row.vm_state } },
        })
      }
      return row
    })
  }

  /** The boot of a scheduled instance: CAS through Nova's task states to ACTIVE. */
  async bootInstance(uuid: string, host: string, node: string): Promise<InstanceRow> {
    let prev: string | null = 'scheduling'
    for (const next of BOOT_SEQUENCE.slice(1)) {
      const values: Partial<InstanceRow> = { task_state: next }
      if (next === 'networking') Object.assign(values, { host, node })
      await this.instanceUpdate(uuid, values, { taskState: prev })
      prev = next
    }
    return this.instanceUpdate(uuid, { vm_state: 'active', task_state: null, power_state: 1, launched_at: this.now() }, { taskState: 'spawning' })
  }

  /** Soft-delete an instance and its dependents in one transaction (Nova's instance_destroy). */
  async instanceDestroy(uuid: string): Promise<void> {
    const found = await this.db.transaction(async (tx) => {
      const n = await tx.repository(Instance).softDelete({ uuid })
      if (n === 0) return false
      await tx.repository(InstanceMetadata).softDelete({ instance_uuid: uuid })
      await tx.repository(InstanceSystemMetadata).softDelete({ instance_uuid: uuid })
      await tx.repository(InstanceInfoCache).softDelete({ instance_uuid: uuid })
      return true
    })
    if (!found) throw new CausewayError('NOT_FOUND', `instance ${uuid} not found`, { details: { uuid } })
  }

  // ------------------------------------------------------------------ actions and events

  async actionStart(values: { instance_uuid: string; action: string; request_id: string; user_id: string; project_id: string }) {
    return this.db.repository(InstanceAction).insert({ ...values, start_time: this.now() })
  }

  async actionFinish(instanceUuid: string, requestId: string, message: string | null = null) {
    const action = await this.actionGetByRequestId(instanceUuid, requestId)
    await this.db.repository(InstanceAction).update({ id: action.id }, { finish_time: this.now(), message })
    return (await this.db.repository(InstanceAction).findOne({ id: action.id }))!
  }

  async actionGetByRequestId(instanceUuid: string, requestId: string) {
    const a = await this.db.repository(InstanceAction).findOne({ request_id: requestId, instance_uuid: instanceUuid })
    if (!a) throw new CausewayError('NOT_FOUND', `action ${requestId} not found`, { details: { requestId } })
    return a
  }

  /** Actions of an instance, newest first, with their events. */
  async actionsGet(instanceUuid: string) {
    return this.db.repository(InstanceAction).find({ where: { instance_uuid: instanceUuid }, orderBy: [['start_time', 'desc']], with: ['events'] })
  }

  async actionEventStart(instanceUuid: string, requestId: string, event: string, host: string | null = null) {
    const action = await this.actionGetByRequestId(instanceUuid, requestId)
    return this.db.repository(InstanceActionEvent).insert({ action_id: action.id, event, start_time: this.now(), host })
  }

  async actionEventFinish(instanceUuid: string, requestId: string, event: string, result: 'Success' | 'Error') {
    const action = await this.actionGetByRequestId(instanceUuid, requestId)
    const n = await this.db.repository(InstanceActionEvent).update({ action_id: action.id, event }, { finish_time: this.now(), result })
    if (n === 0) throw new CausewayError('NOT_FOUND', `event ${event} not found`)
    return (await this.db.repository(InstanceActionEvent).findOne({ action_id: action.id, event }))!
  }

  // ------------------------------------------------------------------ quotas

  /**
   * Reserve `delta` of a resource for a project, never exceeding `hardLimit`. A compare-and-swap
   * loop at the project's home site: linearizable there, so concurrent reservations cannot
   * overshoot; anywhere else it fails with NOT_HOME_SITE (forward to err.details.homeSite).
   */
  async quotaReserve(projectId: string, resource: string, delta: number, hardLimit: number): Promise<number> {
    const repo = this.db.repository(QuotaUsage)
    const id = `${projectId}/${resource}`
    // Only the home site creates the usage row: a second, concurrent creation elsewhere would
    // merge column by column with the home site's counter and could reset it.
    const home = this.projectHome(projectId)
    if (home !== this.db.siteId) {
      throw new CausewayError('NOT_HOME_SITE', `quota of ${projectId} is kept at site ${home}`, { details: { homeSite: home, projectId } })
    }
    for (let attempt = 0; attempt < 100; attempt++) {
      let row = await repo.findOne({ id })
      if (!row) {
        try {
          row = await repo.insert({ id, project_id: projectId, resource, in_use: 0, updated_at: this.now() })
        } catch (e) {
          if (e instanceof CausewayError && e.code === 'CONFLICT') continue // created concurrently
          throw e
        }
      }
      const next = row.in_use + delta
      if (next > hardLimit || next < 0) {
        throw new CausewayError('OVER_QUOTA', `${projectId}: ${resource} ${row.in_use} + ${delta} exceeds ${hardLimit}`, {
          details: { projectId, resource, inUse: row.in_use, delta, hardLimit },
        })
      }
      if ((await repo.update({ id }, { in_use: next, updated_at: this.now() }, { expect: { in_use: row.in_use } })) === 1) return next
    }
    throw new CausewayError('CONFLICT', `${projectId}: quota reservation kept losing races`)
  }

  async quotaUsageGet(projectId: string): Promise<Record<string, number>> {
    const rows = await this.db.repository(QuotaUsage).find({ where: { project_id: projectId } })
    return Object.fromEntries(rows.map((r) => [r.resource, r.in_use]))
  }
}

function kv(rows: unknown): KV {
  const out: KV = {}
  for (const r of (rows as Array<{ key: string; value: string | null }>) ?? []) out[r.key] = r.value
  return out
}

/** Nova's joined shape: metadata as dicts, info cache as its network_info. */
function shape(row: Record<string, unknown>): InstanceFull {
  const out = { ...row } as Record<string, unknown>
  if ('metadata' in row) out.metadata = kv(row.metadata)
  if ('system_metadata' in row) out.system_metadata = kv(row.system_metadata)
  if ('info_cache' in row) {
    const ic = row.info_cache as { network_info: unknown } | null
    out.info_cache = ic ? { network_info: ic.network_info } : null
  }
  return out as InstanceFull
}
