import { openSite } from 'causeway'
import { createSimNetwork, type SimNetwork } from '@causeway/sim'
import type { Site } from '@causeway/core'
import { openDatabase, ormConflicts, type AnyModel, type Database } from '../src/index.js'

/**
 * A backend under test. `db` takes the writes; `read()` returns the database reads go to — for two
 * sites that is the *other* site, after the network settled, so every read checks replication too.
 */
export interface Fixture {
  name: string
  db: Database
  read(): Promise<Database>
  sites: Site[]
  net?: SimNetwork
  close(): Promise<void>
}

export type FixtureFactory = (models: readonly AnyModel[], opts?: { clock?: { nowMs(): number } }) => Promise<Fixture>

export const sqliteFixture: FixtureFactory = async (models, opts) => {
  const db = await openDatabase({ backend: 'sqlite', models, siteId: 'a', clock: opts?.clock })
  return { name: 'sqlite', db, read: async () => db, sites: [], close: () => db.close() }
}

export const causeway1Fixture: FixtureFactory = async (models, opts) => {
  const site = await openSite({ id: 'a', storage: 'memory', conflicts: ormConflicts(models) })
  const db = await openDatabase({ backend: 'causeway', site, models, clock: opts?.clock })
  return {
    name: 'causeway-1-site',
    db,
    read: async () => db,
    sites: [site],
    close: async () => {
      await db.close()
      await site.close()
    },
  }
}

export const causeway2Fixture: FixtureFactory = async (models, opts) => {
  const net = createSimNetwork({ latencyMs: 15, jitterMs: 5, seed: 7 })
  const a = await openSite({ id: 'a', storage: 'memory', conflicts: ormConflicts(models), network: net.adapter('a'), heartbeatMs: 50 })
  const b = await openSite({ id: 'b', storage: 'memory', conflicts: ormConflicts(models), network: net.adapter('b'), heartbeatMs: 50 })
  const dbA = await openDatabase({ backend: 'causeway', site: a, models, clock: opts?.clock })
  const dbB = await openDatabase({ backend: 'causeway', site: b, models, clock: opts?.clock })
  return {
    name: 'causeway-2-sites',
    db: dbA,
    read: async () => {
      await net.settle()
      return dbB
    },
    sites: [a, b],
    net,
    close: async () => {
      await dbA.close()
      await dbB.close()
      await a.close()
      await b.close()
      await net.close()
    },
  }
}

export const allFixtures: Array<[string, FixtureFactory]> = [
  ['sqlite', sqliteFixture],
  ['causeway-1-site', causeway1Fixture],
  ['causeway-2-sites', causeway2Fixture],
]

/** A manual clock: library paths never read the system time in tests. */
export function manualClock(start = Date.UTC(2026, 0, 1)): { nowMs(): number; advance(ms: number): void } {
  let t = start
  return { nowMs: () => t, advance: (ms) => void (t += ms) }
}
