import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const core = pathToFileURL(join(import.meta.dirname, '../dist/index.js')).href

// Issue #8 item 5: a session waiting for its context held no timer that kept the process alive,
// so a top-level await on it ended the process with exit code 13 and no output.
describe('an operation with a deadline keeps the process alive', () => {
  it('a continued session whose context is unavailable rejects with CONTEXT_UNAVAILABLE, in a fresh process', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-keepalive-'))
    try {
      const script = join(dir, 'child.mjs')
      writeFileSync(
        script,
        `import { createSite } from ${JSON.stringify(core)}
const b = await createSite({ id: 'b', storage: 'memory' })
const s = b.session()
await s.put('k', 1)
const context = s.context()
await b.close()
// Site a never hears from b (no network): the wait can only end by its deadline.
const a = await createSite({ id: 'a', storage: 'memory' })
try {
  await a.session({ context, waitMs: 300 }).get('k')
  console.log('resolved')
} catch (e) {
  console.log('rejected ' + e.code)
}
await a.close()
`,
      )
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 })
      expect(r.stderr).toBe('')
      expect(r.stdout.trim()).toBe('rejected CONTEXT_UNAVAILABLE')
      expect(r.status).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
