// Runs abstract-level's own test suite (tape) against CausewayLevel. Every database the suite
// creates gets a fresh prefix on one shared in-memory site, so each starts empty as the suite expects.
import test from 'tape'
import { createRequire } from 'node:module'
import { createSite } from '@causeway/core'
import { CausewayLevel } from '@causeway/level'

const require = createRequire(import.meta.url)
const suite = require('abstract-level/test')

const shards = Number(process.env.SUITE_SHARDS ?? 4)
const site = await createSite({ id: 'suite', storage: 'memory', shards })
let n = 0
suite({
  test,
  factory: (options) => new CausewayLevel({ ...options, site, prefix: `db${n++}/` }),
})
test.onFinish(() => {
  site.close().catch(() => {})
})
