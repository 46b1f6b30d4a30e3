import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CausewayError } from '@causeway/core'
import type { PrivateKey } from '@libp2p/interface'

/** Longest key file accepted: a protobuf Ed25519 key is 68 bytes; RSA keys are a few KiB. */
const MAX_KEY_FILE_BYTES = 64 * 1024
/** Swarm keys are 3 short lines; anything bigger is not a swarm key. */
const MAX_SWARM_KEY_FILE_BYTES = 4 * 1024
const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined
}

/**
 * Create `dir` and its missing parents (mode 0700: they hold secrets), one level at a time.
 * Not fs.mkdir({ recursive: true }): it loops for ever where mkdir answers ENOENT although the
 * parent exists (/proc, some FUSE mounts).
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const abs = resolve(dir)
  try {
    if ((await stat(abs)).isDirectory()) return
    throw new CausewayError('INVALID_OPTIONS', `${abs} exists and is not a directory`, { details: { path: abs } })
  } catch (err) {
    if (err instanceof CausewayError) throw err
    if (errnoCode(err) !== 'ENOENT') throw new CausewayError('INVALID_OPTIONS', `cannot use directory ${abs}: ${(err as Error).message}`, { cause: err, details: { path: abs } })
  }
  const parent = dirname(abs)
  if (parent === abs) throw new CausewayError('INVALID_OPTIONS', `cannot use directory ${abs}`, { details: { path: abs } })
  await ensurePrivateDir(parent)
  try {
    await mkdir(abs, { mode: 0o700 })
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return // created concurrently
    throw new CausewayError('INVALID_OPTIONS', `cannot create directory ${abs}: ${(err as Error).message}`, { cause: err, details: { path: abs } })
  }
}

/**
 * Load the libp2p private key stored at `path` (protobuf-marshalled), creating a fresh Ed25519 key
 * there (mode 0600, exclusive create so two processes cannot race) when the file is missing, with
 * its missing directories (mode 0700): peers are configured before any site (and its dir) exists.
 */
export async function loadOrCreatePrivateKey(path: string): Promise<PrivateKey> {
  if (typeof path !== 'string' || path === '') {
    throw new CausewayError('INVALID_OPTIONS', 'privateKey must be a file path')
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return await readPrivateKey(path)
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
    await ensurePrivateDir(dirname(path))
    const key = await generateKeyPair('Ed25519')
    let fh
    try {
      fh = await open(path, 'wx', 0o600)
    } catch (err) {
      const code = errnoCode(err)
      if (code === 'EEXIST') continue // another process created it first: read theirs
      throw new CausewayError('INVALID_OPTIONS', `cannot create key file ${path}: ${(err as Error).message}`, { cause: err, details: { path } })
    }
    try {
      await fh.writeFile(privateKeyToProtobuf(key))
      await fh.sync()
    } finally {
      await fh.close()
    }
    return key
  }
  throw new CausewayError('INVALID_OPTIONS', `cannot read or create key file ${path}`, { details: { path } })
}

async function readPrivateKey(path: string): Promise<PrivateKey> {
  let bytes: Uint8Array
  try {
    const st = await stat(path)
    if (!st.isFile()) throw new CausewayError('INVALID_OPTIONS', `key file ${path} is not a regular file`, { details: { path } })
    if (st.size > MAX_KEY_FILE_BYTES) throw new CausewayError('INVALID_OPTIONS', `key file ${path} is too large to be a key`, { details: { path } })
    bytes = await readFile(path)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || err instanceof CausewayError) throw err
    throw new CausewayError('INVALID_OPTIONS', `cannot read key file ${path}: ${(err as Error).message}`, { cause: err, details: { path } })
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new CausewayError('INVALID_OPTIONS', `key file ${path} does not hold a protobuf libp2p private key`, { cause: err, details: { path } })
  }
}

/** The PeerId (string) of the key at `path`, creating the key file if it is missing. */
export async function peerIdFromKeyFile(path: string): Promise<string> {
  const key = await loadOrCreatePrivateKey(path)
  return peerIdFromPrivateKey(key).toString()
}

/** A new libp2p private-network (pnet) swarm key in the v1 text format go-ipfs and js-libp2p share. */
export function generateSwarmKey(): Uint8Array {
  const hex = randomBytes(32).toString('hex')
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n/base16/\n${hex}\n`)
}

/** Write a new swarm key to `path` (mode 0600); refuses to overwrite an existing file. */
export async function writeSwarmKeyFile(path: string): Promise<void> {
  let fh
  try {
    fh = await open(path, 'wx', 0o600)
  } catch (err) {
    throw new CausewayError('INVALID_OPTIONS', `cannot create swarm key file ${path}: ${(err as Error).message}`, { cause: err, details: { path } })
  }
  try {
    await fh.writeFile(generateSwarmKey())
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Read and validate a swarm key file; returns the bytes @libp2p/pnet expects. */
export async function readSwarmKeyFile(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array
  try {
    const st = await stat(path)
    if (st.size > MAX_SWARM_KEY_FILE_BYTES) throw new Error('file too large')
    bytes = await readFile(path)
  } catch (err) {
    throw new CausewayError('INVALID_OPTIONS', `cannot read swarm key file ${path}: ${(err as Error).message}`, { cause: err, details: { path } })
  }
  const lines = new TextDecoder().decode(bytes).split(/\r\n|\r|\n/)
  if (lines[0] !== SWARM_KEY_HEADER || lines[1] !== '/base16/' || !/^[0-9a-f]{64}$/.test(lines[2] ?? '')) {
    throw new CausewayError('INVALID_OPTIONS', `swarm key file ${path} is not a v1 base16 libp2p swarm key`, { details: { path } })
  }
  return bytes
}
