/** Helpers to open several Causeway sites on the in-process sim network. */
import path from 'node:path'
import type { OpenSiteOptions, Session, Site } from '@causeway/core'
import { loadOpenSite, loadSim, type SimNetwork } from './loaders.js'

export interface SimCluster {
  net: SimNetwork
  sites: Site[]
  byId: Map<string, Site>
  /** Bytes sent between sites so far (sim stats), or undefined if the sim has no stats. */
  bytes(): number | undefined
  resetBytes(): void
  close(): Promise<void>
}

export interface SimClusterOptions {
  ids: string[]
  latencyMs: number
  tmp: string
  durability?: 'fsync' | 'relaxed'
  storage?: 'level' | 'memory'
  shards?: number
  conflicts?: OpenSiteOptions['conflicts']
}

let clusterN = 0

export async function openSimCluster(o: SimClusterOptions): Promise<SimCluster> {
  const openSite = await loadOpenSite()
  const createSimNetwork = await loadSim()
  const net = createSimNetwork({ latencyMs: o.latencyMs, seed: 7 })
  const sites: Site[] = []
  const n = clusterN++
  try {
    for (const id of o.ids) {
      sites.push(
        await openSite({
          id,
          network: net.adapter(id),
          durability: o.durability ?? 'relaxed',
          ...(o.shards ? { shards: o.shards } : {}),
          ...(o.conflicts ? { conflicts: o.conflicts } : {}),
          ...(o.storage === 'memory' ? { storage: 'memory' as const } : { dir: path.join(o.tmp, `cluster${n}-${id}`) }),
        }),
      )
    }
  } catch (e) {
    await Promise.allSettled(sites.map((s) => s.close()))
    await net.close()
    throw e
  }
  let base = 0
  return {
    net,
    sites,
    byId: new Map(sites.map((s) => [s.id, s])),
    bytes: () => (net.stats ? net.stats().bytes - base : undefined),
    resetBytes: () => {
      if (net.stats) base = net.stats().bytes
    },
    async close() {
      await Promise.allSettled(sites.map((s) => s.close()))
      await net.close()
    },
  }
}

/**
 * Open-loop writer: issues `total` puts at `ratePerSec` through a pool of sessions, with at most
 * `maxInFlight` outstanding. `onIssue(i, key)` is called right before each put.
 */
export async function paced(
  sessions: Session[],
  total: number,
  ratePerSec: number,
  key: (i: number) => string,
  value: (i: number) => unknown,
  onIssue: (i: number, key: string) => void,
  maxInFlight = 512,
): Promise<{ errors: number }> {
  let issued = 0
  let inFlight = 0
  let errors = 0
  const start = performance.now()
  let wake: (() => void) | undefined
  const all: Promise<unknown>[] = []
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * ratePerSec) / 1000) + 1)
    while (issued < due && inFlight < maxInFlight) {
      const i = issued++
      const k = key(i)
      onIssue(i, k)
      inFlight++
      const p = sessions[i % sessions.length]!.put(k, value(i) as never)
        .catch(() => {
          errors++
        })
        .finally(() => {
          inFlight--
          wake?.()
        })
      all.push(p)
    }
    if (issued < total) {
      await new Promise<void>((r) => {
        wake = r
        setTimeout(r, 1)
      })
      wake = undefined
    }
  }
  await Promise.all(all)
  return { errors }
}

/** Resolves when `count` distinct keys matching `filter` have been applied at `site` (from another origin). */
export function waitApplied(site: Site, filter: (key: string) => boolean, count: number, onKey?: (key: string, t: number) => void): { done: Promise<void>; seen(): number; stop(): void } {
  const seen = new Set<string>()
  let resolve!: () => void
  const done = new Promise<void>((r) => (resolve = r))
  if (count === 0) resolve()
  const off = site.onApplied((keys, origin) => {
    if (origin === site.id) return
    const t = performance.now()
    for (const k of keys) {
      if (!filter(k) || seen.has(k)) continue
      seen.add(k)
      onKey?.(k, t)
    }
    if (seen.size >= count) resolve()
  })
  return { done, seen: () => seen.size, stop: off }
}
