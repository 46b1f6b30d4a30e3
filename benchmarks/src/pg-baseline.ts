/**
 * The central PostgreSQL baseline of the control-plane benchmark: one server, sites reach it
 * through the TCP delay proxy (emulated WAN), the same "boot a VM" statements written in SQL with
 * `pg` (the ORM has no PostgreSQL backend).
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { SkipError, errMsg, onCleanup } from './harness.js'
import { repoRoot } from './report.js'

const run = promisify(execFile)

export const PG_INSTALL = 'bash benchmarks/scripts/postgres.sh (as root it installs Debian\'s postgresql with apt-get, then starts a throwaway server), or set CAUSEWAY_PG_URL'

function pgInstalled(): boolean {
  try {
    const dirs = readdirSync('/usr/lib/postgresql')
    if (dirs.some((d) => existsSync(path.join('/usr/lib/postgresql', d, 'bin', 'initdb')))) return true
  } catch {
    /* not Debian's layout */
  }
  return (process.env['PATH'] ?? '').split(':').some((p) => existsSync(path.join(p, 'initdb')))
}

/** A running PostgreSQL: CAUSEWAY_PG_URL, or one started now by benchmarks/scripts/postgres.sh. */
export async function startPostgres(tmp: string): Promise<{ url: string; stop(): Promise<void> }> {
  const env = process.env['CAUSEWAY_PG_URL']
  if (env) return { url: env, stop: async () => {} }
  if (!pgInstalled()) throw new SkipError(`PostgreSQL is not installed: ${PG_INSTALL}`)
  const state = path.join(tmp, 'postgres.state')
  const scripts = path.join(repoRoot, 'benchmarks', 'scripts')
  const e = { ...process.env, CAUSEWAY_PG_STATE: state, CAUSEWAY_PG_NO_INSTALL: '1' }
  let url: string
  try {
    const { stdout } = await run('bash', [path.join(scripts, 'postgres.sh')], { env: e, timeout: 60_000 })
    url = stdout.trim().split('\n').pop()!
  } catch (err) {
    throw new SkipError(`could not start PostgreSQL with benchmarks/scripts/postgres.sh: ${errMsg(err)}`)
  }
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await run('bash', [path.join(scripts, 'postgres-stop.sh')], { env: e, timeout: 30_000 }).catch(() => undefined)
  }
  onCleanup(stop)
  return { url, stop }
}

export const SCHEMA = `
DROP TABLE IF EXISTS instance_actions, instance_info_caches, instance_system_metadata, instance_metadata, instances;
CREATE TABLE instances (
  uuid text PRIMARY KEY, project_id text NOT NULL, user_id text NOT NULL, display_name text NOT NULL,
  host text, node text, vm_state text NOT NULL, task_state text, power_state int NOT NULL,
  memory_mb int NOT NULL, vcpus int NOT NULL, root_gb int NOT NULL, image_ref text NOT NULL,
  launched_at timestamptz, created_at timestamptz NOT NULL, updated_at timestamptz,
  deleted int NOT NULL DEFAULT 0, deleted_at timestamptz);
CREATE INDEX ON instances (project_id, created_at);
CREATE INDEX ON instances (created_at);
CREATE INDEX ON instances (host, node);
CREATE INDEX ON instances (task_state);
CREATE INDEX ON instances (project_id, vm_state);
CREATE TABLE instance_metadata (id bigserial PRIMARY KEY, instance_uuid text NOT NULL, key text NOT NULL, value text, deleted int NOT NULL DEFAULT 0, deleted_at timestamptz);
CREATE INDEX ON instance_metadata (instance_uuid, key);
CREATE TABLE instance_system_metadata (id bigserial PRIMARY KEY, instance_uuid text NOT NULL, key text NOT NULL, value text, deleted int NOT NULL DEFAULT 0, deleted_at timestamptz);
CREATE INDEX ON instance_system_metadata (instance_uuid, key);
CREATE TABLE instance_info_caches (instance_uuid text PRIMARY KEY, network_info jsonb, updated_at timestamptz, deleted int NOT NULL DEFAULT 0, deleted_at timestamptz);
CREATE TABLE instance_actions (id bigserial PRIMARY KEY, instance_uuid text NOT NULL, action text NOT NULL, request_id text NOT NULL, user_id text, project_id text, start_time timestamptz, finish_time timestamptz, message text);
CREATE INDEX ON instance_actions (instance_uuid, request_id);
`

interface PgClient {
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null; rows: unknown[] }>
  release(): void
}
export interface PgPool {
  connect(): Promise<PgClient>
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null; rows: unknown[] }>
  end(): Promise<void>
}

export async function pgPool(url: string, max: number): Promise<PgPool> {
  let pg: { default?: { Pool: new (o: object) => PgPool }; Pool?: new (o: object) => PgPool }
  try {
    pg = (await import('pg')) as typeof pg
  } catch (e) {
    throw new SkipError(`cannot load the pg client: ${errMsg(e)}`)
  }
  const Pool = pg.default?.Pool ?? pg.Pool!
  const pool = new Pool({ connectionString: url, max })
  ;(pool as unknown as { on(ev: string, fn: () => void): void }).on('error', () => undefined)
  return pool
}

/**
 * The same calls as examples/compute-db's createInstances with the boot sequence: instance create
 * (instance + metadata + system metadata + info cache in one transaction, then the joined read),
 * the create action, and the four compare-and-swap task-state transitions to ACTIVE.
 * Returns per-call latencies (ms).
 */
export async function createInstancesPg(pool: PgPool, n: number, concurrency: number, prefix: string): Promise<number[]> {
  const lat = new Array<number>(n)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= n) return
      const uuid = `${prefix}-vm-${String(i).padStart(8, '0')}`
      const project = `project-${i % 10}`
      const t0 = performance.now()
      const c = await pool.connect()
      try {
        await c.query('BEGIN')
        await c.query(
          `INSERT INTO instances (uuid, project_id, user_id, display_name, host, node, vm_state, task_state, power_state, memory_mb, vcpus, root_gb, image_ref, created_at)
           VALUES ($1,$2,'bench',$3,NULL,NULL,'building','scheduling',0,2048,2,20,'cirros-0.6',now())`,
          [uuid, project, `${prefix}-${i}`],
        )
        await c.query(`INSERT INTO instance_metadata (instance_uuid, key, value) VALUES ($1,'role','bench'),($1,'index',$2)`, [uuid, String(i)])
        await c.query(`INSERT INTO instance_system_metadata (instance_uuid, key, value) VALUES ($1,'image_min_disk','1'),($1,'image_os_type','linux')`, [uuid])
        await c.query(`INSERT INTO instance_info_caches (instance_uuid, network_info, updated_at) VALUES ($1,$2,now())`, [uuid, JSON.stringify([{ id: `port-${i}`, address: 'fa:16:3e:00:00:01' }])])
        await c.query('COMMIT')
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined)
        throw e
      } finally {
        c.release()
      }
      await pool.query(
        `SELECT i.*, c.network_info,
           (SELECT json_object_agg(key, value) FROM instance_metadata m WHERE m.instance_uuid = i.uuid AND m.deleted = 0) AS metadata,
           (SELECT json_object_agg(key, value) FROM instance_system_metadata s WHERE s.instance_uuid = i.uuid AND s.deleted = 0) AS system_metadata
         FROM instances i LEFT JOIN instance_info_caches c ON c.instance_uuid = i.uuid WHERE i.uuid = $1 AND i.deleted = 0`,
        [uuid],
      )
      await pool.query(`INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id, start_time) VALUES ($1,'create',$2,'bench',$3,now())`, [uuid, `req-${uuid}`, project])
      const steps: Array<[string | null, string, string]> = [
        ['scheduling', 'networking', `, host = 'host-${i % 4}', node = 'node-${i % 4}'`],
        ['networking', 'block_device_mapping', ''],
        ['block_device_mapping', 'spawning', ''],
      ]
      for (const [prev, nextState, extra] of steps) {
        const r = await pool.query(`UPDATE instances SET task_state = $2${extra}, updated_at = now() WHERE uuid = $1 AND task_state = $3 AND deleted = 0 RETURNING *`, [uuid, nextState, prev])
        if (r.rowCount !== 1) throw new Error(`CAS ${prev} -> ${nextState} failed for ${uuid}`)
      }
      const r = await pool.query(`UPDATE instances SET vm_state = 'active', task_state = NULL, power_state = 1, launched_at = now(), updated_at = now() WHERE uuid = $1 AND task_state = 'spawning' AND deleted = 0 RETURNING *`, [uuid])
      if (r.rowCount !== 1) throw new Error(`CAS spawning -> active failed for ${uuid}`)
      lat[i] = performance.now() - t0
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, n)) }, worker))
  return lat
}
