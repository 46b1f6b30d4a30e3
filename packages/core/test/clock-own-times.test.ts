import { afterEach, describe, expect, it } from 'vitest'
import { createSite } from '../src/site.js'
import type { Site } from '../src/api.js'

const sites: Site[] = []
afterEach(async () => {
  for (const s of sites.splice(0)) await s.close()
})

describe('a site writing faster than one write per millisecond', () => {
  it('keeps accepting its own sessions (its clock runs ahead of physical time by its own ticks)', async () => {
    // A stopped physical clock and a 5 ms skew bound: every write moves the clock one unit ahead.
    const site = await createSite({ id: 'fast', storage: 'memory', clock: { nowMs: () => 1_000 }, maxClockSkewMs: 5 })
    sites.push(site)
    const s = site.session()
    for (let i = 0; i < 20; i++) await s.put(`k${i}`, i)
    // A continued session carries the same times: they were issued here, so they are not "outside".
    const again = site.session({ context: s.context() })
    await again.put('k0', 'again')
    expect((await again.get('k0'))?.value).toBe('again')
  })
})
