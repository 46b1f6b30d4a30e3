import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { ClassicLevel } from 'classic-level'
import { createSite } from '../src/site.js'
import type { ShardDb, Site, StorageFactory } from '../src/api.js'
import { KeyFilter, TermFilter } from '../src/key-filter.js'
import { indexBase, indexScanRange } from '../src/layout.js'

describe('KeyFilter', () => {
  it('never forgets a key it was given, across growth', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ unit: 'binary' }), { maxLength: 300 }), (keys) => {
        const f = new KeyFilter(4, 1 << 20)
        for (const k of keys) f.add(k)
        f.markReady()
        return keys.every((k) => f.mayHave(k))
      }),
      { numRuns: 50 },
    )
  })

  it('answers "maybe" for every key until it is ready, and after it is disabled', () => {
    const f = new KeyFilter(4, 16)
    expect(f.mayHave('x')).toBe(true)
    f.markReady()
    expect(f.mayHave('x')).toBe(false)
    for (let i = 0; i < 64; i++) f.add(`k${i}`) // beyond its bound of 16 keys: dropped
    expect(f.isReady).toBe(false)
    expect(f.mayHave('never')).toBe(true)
  })

  it('rules out most keys it was not given (false positives stay rare across layers)', () => {
    const f = new KeyFilter(1024, 1 << 20)
    for (let i = 0; i < 20_000; i++) f.add(`user${String(i).padStart(8, '0')}`)
    f.markReady()
    let fp = 0
    for (let i = 20_000; i < 40_000; i++) if (f.mayHave(`user${String(i).padStart(8, '0')}`)) fp++
    expect(fp / 20_000).toBeLessThan(0.05)
  })
})

describe('TermFilter', () => {
  // Terms over a few chars, boundaries (U+0001, U+0002) and ordinary ones, long enough to cross the steps.
  const char = fc.constantFrom('a', 'b', 'z', '\u0001', '\u0002', 'é')
  const term = fc.array(char, { maxLength: 30 }).map((cs) => cs.join(''))
  const bound = fc.option(term, { nil: undefined })
  it('never rules out a range that holds a record (any scan options, exact terms, prefixes)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(term, { maxLength: 20 }), term, bound, bound, fc.boolean(), fc.boolean(), (terms, probe, lo, hi, loOpen, hiOpen) => {
        const f = new TermFilter(4, 1 << 20)
        for (const t of terms) f.addTerm('ix', t)
        f.keys.markReady()
        const ranges = [
          { gte: probe, lte: probe }, // an exact term
          { gte: probe + '\u0001', lt: probe + '\u0002' }, // a compound prefix (the ORM's form)
          { [loOpen ? 'gt' : 'gte']: lo, [hiOpen ? 'lt' : 'lte']: hi },
        ]
        for (const opts of ranges) {
          const r = indexScanRange('ix', opts as never)
          const base = indexBase('ix')
          const upper = r.lt!.startsWith(base) ? r.lt!.slice(base.length) : undefined
          const holds = terms.some((t) => {
            const rec = base + t + '\u0000key'
            return rec >= r.gte! && rec < r.lt!
          })
          if (holds && !f.mayHaveRange('ix', r.gte!.slice(base.length), upper)) return false
        }
        return true
      }),
      { numRuns: 300 },
    )
  })

  it('rules out lookups of terms it never saw', () => {
    const f = new TermFilter(1024, 1 << 20)
    for (let i = 0; i < 500; i++) f.addTerm('ix', `1r1-vm-${String(i).padStart(8, '0')}\u00011role`)
    f.keys.markReady()
    let maybe = 0
    for (let i = 500; i < 1000; i++) if (f.mayHaveRange('ix', `1r1-vm-${String(i).padStart(8, '0')}\u0001`, `1r1-vm-${String(i).padStart(8, '0')}\u0002`)) maybe++
    expect(maybe).toBeLessThan(50)
    expect(f.mayHaveRange('ix', `1r1-vm-00000007\u0001`, `1r1-vm-00000007\u0002`)).toBe(true)
  })
})

// A persistent custom storage that counts the storage reads of key states.
const dirs: string[] = []
const sites: Site[] = []
afterEach(async () => {
  for (const s of sites.splice(0)) await s.close().catch(() => {})
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
let reads = 0
let iterators = 0
class CountingLevel extends ClassicLevel<string, Uint8Array> {
  override keys(...args: Parameters<ClassicLevel<string, Uint8Array>['keys']>) {
    iterators++
    return super.keys(...args)
  }
  override getMany(...args: Parameters<ClassicLevel<string, Uint8Array>['getMany']>) {
    reads++
    return super.getMany(...args)
  }
}
const counting: StorageFactory = Object.assign(
  (i: number, dir: string | undefined) => new CountingLevel(join(dir!, `c-${i}`), { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as ShardDb,
  { supports: { locking: true } },
)
async function open(dir: string): Promise<Site> {
  const s = await createSite({ id: 'paris', dir, storage: counting, shards: 2, cacheEntries: 16 })
  sites.push(s)
  return s
}
/** Reads of never-written keys stop costing storage reads once the filter is built (bounded wait). */
async function waitForFilter(site: Site): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const before = reads
    expect(await site.session().get(`probe/${i}`)).toBeUndefined()
    if (reads === before) return true
    await new Promise((r) => setTimeout(r, 5))
  }
  return false
}

describe('reads of new keys skip storage (key filter)', () => {
  it('a never-written key costs no storage read; stored and newly written keys still read back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-filter-'))
    dirs.push(dir)
    let site = await open(dir)
    for (let i = 0; i < 40; i++) await site.session().put(`old/${i}`, i)
    await site.session().delete('old/0')
    await site.close()
    site = await open(dir) // the filter is now built from what is on disk
    expect(await waitForFilter(site)).toBe(true)
    const before = reads
    const s = site.session()
    expect(await s.getMany(['new/1', 'new/2', 'new/3'])).toEqual(new Map())
    expect(reads).toBe(before)
    // Keys stored before the reopen are found (the cache holds 16 states: most come from storage).
    for (let i = 1; i < 40; i++) expect((await site.session().get(`old/${i}`))?.value).toBe(i)
    expect(await site.session().get('old/0')).toBeUndefined()
    // Keys written after the reopen, evicted from the cache since, are found too.
    for (let i = 0; i < 40; i++) await site.session().write([{ key: `fresh/${i}`, value: i }, { key: `fresh/x${i}`, value: 100 + i }])
    for (let i = 0; i < 40; i++) {
      const got = await site.session().getMany([`fresh/${i}`, `fresh/x${i}`])
      expect([got.get(`fresh/${i}`)?.value, got.get(`fresh/x${i}`)?.value]).toEqual([i, 100 + i])
    }
  })
})

describe('index scans skip shards that cannot match (term filter)', () => {
  it('a lookup of an unknown term opens no storage iterator; known terms are found, also after a reopen and a rebuild', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-terms-'))
    dirs.push(dir)
    const index = (fingerprint: string) => ({
      name: 'by-owner',
      prefix: 'vm/',
      fingerprint,
      terms: (_k: string, e: { value: unknown } | undefined) => (e && typeof e.value === 'object' && e.value !== null ? [String((e.value as { owner: string }).owner)] : []),
    })
    const scan = async (site: Site, term: string) => {
      const out: string[] = []
      for await (const { key } of site.scanIndex('by-owner', { gte: term, lte: term })) out.push(key)
      return out
    }
    let site = await open(dir)
    await site.ensureIndex(index('v1'))
    for (let i = 0; i < 20; i++) await site.session().put(`vm/${i}`, { owner: `owner-${i % 4}` })
    await site.close()
    site = await open(dir)
    await site.ensureIndex(index('v1'))
    expect(await waitForFilter(site)).toBe(true)
    const before = iterators
    expect(await scan(site, 'nobody-at-all')).toEqual([])
    expect(iterators).toBe(before)
    expect(await scan(site, 'owner-1')).toEqual(['vm/1', 'vm/13', 'vm/17', 'vm/5', 'vm/9'])
    await site.session().put('vm/new', { owner: 'nobody-at-all' })
    expect(await scan(site, 'nobody-at-all')).toEqual(['vm/new'])
    await site.ensureIndex(index('v2')) // a rebuild clears the records and writes them again
    expect(await scan(site, 'owner-2')).toEqual(['vm/10', 'vm/14', 'vm/18', 'vm/2', 'vm/6'])
    expect(await scan(site, 'nobody-at-all')).toEqual(['vm/new'])
  })
})
