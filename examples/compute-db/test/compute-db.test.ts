import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openSite } from 'causeway'
import { createSimNetwork } from '@causeway/sim'
import { CausewayError, openDatabase, ormConflicts, type Database } from '@causeway/orm'
import { ComputeDb, computeModels, createInstances, type InstanceCreate } from '../src/index.js'

/**
 * One environment = the service at two "places". On SQLite and on one Causeway site both places
 * are the same database; on two sites, `a` and `b` run at different sites of a simulated WAN,
 * `sync()` waits for replication, and `partition()` cuts the link.
 */
interface Env {
  a: ComputeDb
  b: ComputeDb
  at(site: string): ComputeDb
  sync(): Promise<void>
  partition(): void
  heal(): void
  close(): Promise<void>
}

function manualClock() {
  let t = Date.UTC(2026, 5, 1)
  return { nowMs: () => t, advance: (ms = 1000) => void (t += ms) }
}
type Clock = ReturnType<typeof manualClock>

// Deployment configuration: with two sites p2 lives at b; with one database everything is local.
const projectHome = (p: string) => (p === 'p2' ? 'b' : 'a')
const local = () => 'a'

async function sqliteEnv(clock: Clock): Promise<Env> {
  const db = await openDatabase({ backend: 'sqlite', models: computeModels, siteId: 'a', clock })
  const svc = new ComputeDb(db, { clock, projectHome: local })
  return { a: svc, b: svc, at: () => svc, sync: async () => {}, partition: () => {}, heal: () => {}, close: () => db.close() }
}

async function oneSiteEnv(clock: Clock): Promise<Env> {
  const site = await openSite({ id: 'a', storage: 'memory', conflicts: ormConflicts(computeModels) })
  const db = await openDatabase({ backend: 'causeway', site, models: computeModels, clock })
  const svc = new ComputeDb(db, { clock, projectHome: local })
  return { a: svc, b: svc, at: () => svc, sync: async () => {}, partition: () => {}, heal: () => {}, close: () => site.close() }
}

/** `legacy`: sites opened with ormConflicts (the earlier row layout); otherwise the documented `openSite({ id, network })`. */
async function twoSiteEnv(clock: Clock, legacy = true): Promise<Env> {
  const net = createSimNetwork({ latencyMs: 25, jitterMs: 5, seed: 42 })
  const dbs: Database[] = []
  const sites = []
  for (const id of ['a', 'b']) {
    const site = legacy
      ? await openSite({ id, storage: 'memory', conflicts: ormConflicts(computeModels), network: net.adapter(id), heartbeatMs: 50 })
      : await openSite({ id, storage: 'memory', network: net.adapter(id), heartbeatMs: 50 })
    sites.push(site)
    dbs.push(await openDatabase({ backend: 'causeway', site, models: computeModels, clock }))
  }
  const a = new ComputeDb(dbs[0]!, { clock, projectHome })
  const b = new ComputeDb(dbs[1]!, { clock, projectHome })
  return {
    a,
    b,
    at: (s) => (s === 'a' ? a : b),
    sync: () => net.settle(),
    partition: () => net.partition(['a'], ['b']),
    heal: () => net.heal(),
    close: async () => {
      for (const s of sites) await s.close()
      await net.close()
    },
  }
}

/** What a service does with NOT_HOME_SITE: forward the call to the row's home site. */
async function atHome<T>(env: Env, from: ComputeDb, fn: (svc: ComputeDb) => Promise<T>): Promise<T> {
  try {
    return await fn(from)
  } catch (e) {
    if (e instanceof CausewayError && e.code === 'NOT_HOME_SITE') return fn(env.at(e.details.homeSite as string))
    throw e
  }
}

async function codeOf(p: Promise<unknown>): Promise<CausewayError | undefined> {
  try {
    await p
    return undefined
  } catch (e) {
    if (e instanceof CausewayError) return e
    throw e
  }
}

const spec = (i: number, over: Partial<InstanceCreate> = {}): InstanceCreate => ({
  uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  project_id: 'p1',
  user_id: 'u1',
  display_name: `vm-${String(i).padStart(2, '0')}`,
  memory_mb: 512 * ((i % 4) + 1),
  vcpus: (i % 2) + 1,
  root_gb: 10,
  image_ref: 'cirros',
  ...over,
})

describe.each([
  ['sqlite', sqliteEnv],
  ['causeway-1-site', oneSiteEnv],
  ['causeway-2-sites', twoSiteEnv],
  // Issue #8 item 6: sites opened without any conflict configuration run the same suite.
  ['causeway-2-sites-unconfigured', (clock: Clock) => twoSiteEnv(clock, false)],
])('compute-db on %s', (_name, make) => {
  let env: Env
  let clock: Clock
  beforeEach(async () => {
    clock = manualClock()
    env = await make(clock)
  })
  afterEach(async () => {
    await env.close()
  })

  it('creates an instance with metadata, system metadata and info cache, and gets it with joins', async () => {
    const created = await env.a.instanceCreate(
      spec(1, { metadata: { role: 'web', tier: null }, system_metadata: { image_os_type: 'linux' }, network_info: [{ id: 'port-1', ips: ['10.0.0.5'] }] }),
    )
    expect(created).toMatchObject({ vm_state: 'building', task_state: 'scheduling', host: null, deleted: 0 })
    await env.sync()
    const got = await env.b.instanceGetByUuid(created.uuid)
    expect(got).toEqual(created)
    expect(got.metadata).toEqual({ role: 'web', tier: null })
    expect(got.system_metadata).toEqual({ image_os_type: 'linux' })
    expect(got.info_cache).toEqual({ network_info: [{ id: 'port-1', ips: ['10.0.0.5'] }] })
    expect(got.created_at).toEqual(new Date(clock.nowMs()))
    const bare = await env.b.instanceGetByUuid(created.uuid, { columnsToJoin: [] })
    expect(bare).not.toHaveProperty('metadata')
    expect((await codeOf(env.b.instanceGetByUuid('missing')))?.code).toBe('NOT_FOUND')
    // A failed create leaves nothing behind (duplicate uuid: the whole transaction aborts).
    expect((await codeOf(env.a.instanceCreate(spec(1, { metadata: { x: 'y' } }))))?.code).toBe('CONFLICT')
    await env.sync()
    expect((await env.b.instanceGetByUuid(created.uuid)).metadata).toEqual({ role: 'web', tier: null })
  })

  it('lists with filters, sort keys, marker pagination and limit', async () => {
    for (let i = 0; i < 14; i++) {
      clock.advance(i % 3 === 0 ? 0 : 1000) // ties on created_at, broken by uuid
      await env.a.instanceCreate(spec(i, { project_id: i % 2 ? 'p1' : 'p2', display_name: `vm-${String(13 - i).padStart(2, '0')}` }))
    }
    await env.a.instanceUpdate(spec(3).uuid, { vm_state: 'active', host: 'h1' })
    await env.a.instanceUpdate(spec(5).uuid, { vm_state: 'error', host: 'h2' })
    await env.a.instanceUpdate(spec(7).uuid, { vm_state: 'active', host: 'h1' })
    await env.sync()
    const all = await env.b.instanceGetAllByFilters({ filters: { project_id: 'p1' }, columnsToJoin: [] })
    expect(all.map((r) => r.uuid.slice(-2))).toEqual(['13', '11', '09', '07', '05', '03', '01'])
    // Marker pagination walks the same list in pages.
    const pages: string[] = []
    let marker: string | undefined
    for (;;) {
      const page = await env.b.instanceGetAllByFilters({ filters: { project_id: 'p1' }, limit: 3, marker })
      if (!page.length) break
      pages.push(...page.map((r) => r.uuid.slice(-2)))
      marker = page[page.length - 1]!.uuid
    }
    expect(pages).toEqual(['13', '11', '09', '07', '05', '03', '01'])
    const byName = await env.b.instanceGetAllByFilters({ sortKeys: ['display_name'], sortDirs: ['asc'], limit: 4 })
    expect(byName.map((r) => r.display_name)).toEqual(['vm-00', 'vm-01', 'vm-02', 'vm-03'])
    const states = await env.b.instanceGetAllByFilters({ filters: { vm_state: ['active', 'error'] }, sortKeys: ['host', 'uuid'], sortDirs: ['asc', 'asc'] })
    expect(states.map((r) => [r.host, r.vm_state, r.uuid.slice(-2)])).toEqual([
      ['h1', 'active', '03'],
      ['h1', 'active', '07'],
      ['h2', 'error', '05'],
    ])
    const unscheduled = await env.b.instanceGetAllByFilters({ filters: { project_id: 'p2', host: null }, limit: 2, sortKeys: ['memory_mb', 'uuid'], sortDirs: ['desc', 'asc'] })
    expect(unscheduled.map((r) => [r.memory_mb, r.uuid.slice(-2)])).toEqual([
      [1536, '02'],
      [1536, '06'],
    ])
    expect((await codeOf(env.b.instanceGetAllByFilters({ marker: 'nope' })))?.code).toBe('NOT_FOUND')
  })

  it('boots through the CAS state transitions and rejects unexpected states', async () => {
    const { uuid } = await env.a.instanceCreate(spec(1))
    await env.sync()
    // Boot from b: on two sites the calls are forwarded to a, the instance's home.
    const active = await atHome(env, env.b, (svc) => svc.bootInstance(uuid, 'h1', 'n1'))
    expect(active).toMatchObject({ vm_state: 'active', task_state: null, power_state: 1, host: 'h1', node: 'n1' })
    const e = await codeOf(atHome(env, env.b, (svc) => svc.instanceUpdate(uuid, { task_state: 'spawning' }, { taskState: 'block_device_mapping' })))
    expect(e?.code).toBe('CONFLICT')
    expect(e?.details.actual).toEqual({ taskState: null, vmState: 'active' })
    // Two concurrent reboots: exactly one wins the CAS.
    const results = await Promise.allSettled([0, 1, 2].map(() => env.a.instanceUpdate(uuid, { task_state: 'rebooting' }, { taskState: null, vmState: 'active' })))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    await env.sync()
    expect((await env.b.instanceGetByUuid(uuid)).task_state).toBe('rebooting')
    expect(await env.b.instanceGetAllByFilters({ filters: { task_state: 'rebooting' }, columnsToJoin: [] })).toHaveLength(1)
  })

  it('soft-deletes an instance with its dependents; lists per host', async () => {
    for (let i = 0; i < 4; i++) {
      clock.advance()
      const { uuid } = await env.a.instanceCreate(spec(i, { metadata: { k: String(i) } }))
      await env.a.bootInstance(uuid, i < 3 ? 'h1' : 'h2', `n${i % 2}`)
    }
    await env.a.instanceDestroy(spec(1).uuid)
    expect((await codeOf(env.a.instanceDestroy(spec(1).uuid)))?.code).toBe('NOT_FOUND')
    await env.sync()
    expect((await codeOf(env.b.instanceGetByUuid(spec(1).uuid)))?.code).toBe('NOT_FOUND')
    const dead = await env.b.instanceGetByUuid(spec(1).uuid, { readDeleted: true })
    expect(dead).toMatchObject({ deleted: 1, metadata: {}, info_cache: null })
    expect(dead.deleted_at).toEqual(new Date(clock.nowMs()))
    expect((await env.b.instanceGetAllByFilters({ filters: { deleted: true } })).map((r) => r.uuid)).toEqual([spec(1).uuid])
    expect((await env.b.instanceGetAllByHost('h1')).map((r) => r.uuid.slice(-2))).toEqual(['00', '02'])
    expect((await env.b.instanceGetAllByHost('h1', 'n0')).map((r) => r.uuid.slice(-2))).toEqual(['00', '02'])
    expect((await env.b.instanceGetAllByHost('h2')).map((r) => r.uuid.slice(-2))).toEqual(['03'])
  })

  it('records instance actions and events', async () => {
    const { uuid } = await env.a.instanceCreate(spec(1))
    await env.a.actionStart({ instance_uuid: uuid, action: 'create', request_id: 'req-1', user_id: 'u1', project_id: 'p1' })
    clock.advance()
    await env.a.actionEventStart(uuid, 'req-1', 'compute_build_and_run_instance', 'h1')
    clock.advance()
    const ev = await env.a.actionEventFinish(uuid, 'req-1', 'compute_build_and_run_instance', 'Success')
    expect(ev.result).toBe('Success')
    await env.a.actionFinish(uuid, 'req-1')
    clock.advance()
    await env.a.actionStart({ instance_uuid: uuid, action: 'reboot', request_id: 'req-2', user_id: 'u1', project_id: 'p1' })
    await env.sync()
    const actions = await env.b.actionsGet(uuid)
    expect(actions.map((a) => [a.action, a.events.map((e) => [e.event, e.result, e.host])])).toEqual([
      ['reboot', []],
      ['create', [['compute_build_and_run_instance', 'Success', 'h1']]],
    ])
    expect(actions[1]!.finish_time).toBeInstanceOf(Date)
    expect((await codeOf(env.b.actionGetByRequestId(uuid, 'req-9')))?.code).toBe('NOT_FOUND')
  })

  it('reserves quota at the project home site without overshooting', async () => {
    // p1 lives at a, p2 at b (on one database both are local).
    const tries = await Promise.allSettled(Array.from({ length: 12 }, () => atHome(env, env.a, (svc) => svc.quotaReserve('p1', 'instances', 1, 10))))
    expect(tries.filter((t) => t.status === 'fulfilled')).toHaveLength(10)
    const over = tries.find((t) => t.status === 'rejected') as PromiseRejectedResult
    expect((over.reason as CausewayError).code).toBe('OVER_QUOTA')
    await env.sync()
    // From b, p1's reservations are forwarded to a.
    expect(await atHome(env, env.b, (svc) => svc.quotaReserve('p1', 'instances', -3, 10))).toBe(7)
    expect(await atHome(env, env.a, (svc) => svc.quotaReserve('p2', 'cores', 4, 8))).toBe(4)
    await env.sync()
    expect(await env.b.quotaUsageGet('p1')).toEqual({ instances: 7 })
    expect(await env.a.quotaUsageGet('p2')).toEqual({ cores: 4 })
  })

  it('keeps serving both places during a partition and converges after it heals', async () => {
    const { uuid } = await env.a.instanceCreate(spec(1))
    await env.sync()
    env.partition()
    await env.a.instanceCreate(spec(2, { project_id: 'p2' }))
    await env.b.instanceCreate(spec(3, { project_id: 'p2' }))
    // The home site keeps running CAS; the other place updates another column.
    await env.a.bootInstance(uuid, 'h9', 'n9')
    await env.b.instanceUpdate(uuid, { display_name: 'renamed' })
    env.heal()
    await env.sync()
    for (const svc of [env.a, env.b]) {
      const got = await svc.instanceGetByUuid(uuid)
      expect([got.vm_state, got.host, got.display_name]).toEqual(['active', 'h9', 'renamed'])
      expect((await svc.instanceGetAllByFilters({ filters: { project_id: 'p2' }, sortKeys: ['uuid'], sortDirs: ['asc'] })).map((r) => r.uuid.slice(-2))).toEqual(['02', '03'])
    }
  })

  it('exports a create-N-instances workload that reports per-call latencies', async () => {
    const lat = await createInstances(env.a.db, 12, { concurrency: 4, prefix: 'w', boot: true, clock })
    expect(lat).toHaveLength(12)
    expect(lat.every((x) => typeof x === 'number' && x >= 0)).toBe(true)
    await env.sync()
    expect(await env.b.instanceGetAllByFilters({ filters: { vm_state: 'active' }, columnsToJoin: [] })).toHaveLength(12)
    const one = await env.b.instanceGetByUuid('w-vm-00000005')
    expect(one.metadata).toEqual({ role: 'bench', index: '5' })
  })
})
