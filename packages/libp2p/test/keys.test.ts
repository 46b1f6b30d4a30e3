import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromKeyFile, writeSwarmKeyFile } from '../src/keys.js'

describe('key files', () => {
  let dir = ''
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'causeway-keys-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('creates missing parent directories (0700) and the key (0600), as the documented order needs', async () => {
    const path = join(dir, 'data', 'paris', 'peer.key')
    const id = await peerIdFromKeyFile(path)
    expect(id).toMatch(/^12D3KooW/)
    expect((await stat(join(dir, 'data'))).mode & 0o777).toBe(0o700)
    expect((await stat(join(dir, 'data', 'paris'))).mode & 0o777).toBe(0o700)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await peerIdFromKeyFile(path)).toBe(id)
  })

  it('a relative path works from the working directory', async () => {
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const id = await peerIdFromKeyFile('./data/paris/peer.key')
      expect(await peerIdFromKeyFile(join(dir, 'data/paris/peer.key'))).toBe(id)
    } finally {
      process.chdir(cwd)
    }
  })

  it('a parent that is a file, or a directory under /proc, fails fast with INVALID_OPTIONS', async () => {
    await writeFile(join(dir, 'file'), 'x')
    await expect(peerIdFromKeyFile(join(dir, 'file', 'sub', 'k.key'))).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    // fs.mkdir({ recursive: true }) loops for ever on /proc (mkdir says ENOENT, the parent exists).
    await expect(peerIdFromKeyFile('/proc/causeway-test/sub/k.key')).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    await expect(writeSwarmKeyFile(join(dir, 'file', 'swarm.key'))).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  }, 10_000)
})
