import { describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeTargets, prototypeSnapshot, runTarget, fromHex, TARGET_NAMES } from './targets.mjs'
import { m } from './modules.js'

// Every input the fuzzer (or an issue) found is replayed here: only typed errors may escape, and no
// built-in prototype may change. Files: corpus/<target>--<what>.hex (hex text) or .bin (raw bytes).
const dir = join(import.meta.dirname, 'corpus')
const files = readdirSync(dir).filter((f) => f.endsWith('.hex') || f.endsWith('.bin'))
const targets = makeTargets(m)

describe('fuzz corpus replay', () => {
  it('has the issue reproductions', () => {
    expect(files.length).toBeGreaterThanOrEqual(10)
  })
  it.each(files)('%s', (file) => {
    const target = file.slice(0, file.indexOf('--'))
    expect(TARGET_NAMES).toContain(target)
    const raw = readFileSync(join(dir, file))
    const bytes = file.endsWith('.hex') ? fromHex(raw.toString('utf8')) : new Uint8Array(raw)
    const before = prototypeSnapshot()
    const outcome = runTarget(m, targets, target, bytes)
    if (outcome !== 'ok' && outcome !== 'rejected') throw outcome // an untyped error: show it
    // Corpus files named *--reject-* must be refused (they are the holes).
    // ...by a check of the decoder itself, not by catching an exception from underneath (a wrapped
    // stack overflow, say): the error carries no cause.
    if (file.includes('--reject-')) {
      expect(outcome).toBe('rejected')
      if (target !== 'framer') {
        let cause: unknown = 'none thrown'
        try {
          runTarget(m, targets, target, bytes, { rethrow: true })
        } catch (e) {
          cause = (e as Error).cause
        }
        expect(cause).toBeUndefined()
      }
    }
    expect(prototypeSnapshot()).toBe(before)
  })
})
