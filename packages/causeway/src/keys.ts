import { access } from 'node:fs/promises'
import { peerIdFromKeyFile, writeSwarmKeyFile } from '@causeway/libp2p'

export interface KeygenResult {
  peerId: string
  /** False when the file existed already: keys are never overwritten (the PeerId is the identity). */
  created: boolean
}

/** Create (or read) the Ed25519 key at `path` and return its PeerId. */
export async function keygen(path: string): Promise<KeygenResult> {
  let existed = true
  try { await access(path) } catch { existed = false }
  const peerId = await peerIdFromKeyFile(path)
  return { peerId, created: !existed }
}

/** Write a new libp2p private-network swarm key (refuses to overwrite). */
export async function swarmkey(path: string): Promise<void> {
  await writeSwarmKeyFile(path)
}
