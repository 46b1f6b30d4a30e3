import type { OpenSiteOptions, Site } from '@causeway/core'
import { createSite } from '@causeway/core'

export * from '@causeway/core'

/**
 * Open a site with the real defaults: `shards` LevelDB databases (classic-level) under `dir`
 * (a fresh temporary directory when omitted), fsync durability, last-writer-wins conflicts.
 */
export function openSite(options: OpenSiteOptions): Promise<Site> {
  return createSite(options)
}
