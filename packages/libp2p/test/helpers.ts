import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from '@causeway/core'
import { libp2pNetwork, peerIdFromKeyFile } from '../src/index.js'
import type { Libp2pNetwork, Libp2pNetworkOptions } from '../src/index.js'

// The one fake handler and wait helpers, shared with the sim tests and the compliance suite.
export { RecordingHandler, sleep, waitFor } from '../../../test/compliance/handler.js'

export function recordingLogger(): Logger & { lines: Array<{ level: string; obj: object; msg?: string }> } {
  const lines: Array<{ level: string; obj: object; msg?: string }> = []
  const mk = (level: string) => (obj: object, msg?: string) => { lines.push({ level, obj, msg }) }
  return { lines, debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error') }
}

export class Scratch {
  dir = ''
  async init(): Promise<void> { this.dir = await mkdtemp(join(tmpdir(), 'causeway-libp2p-')) }
  path(name: string): string { return join(this.dir, name) }
  async cleanup(): Promise<void> { if (this.dir !== '') await rm(this.dir, { recursive: true, force: true }) }
}

/** Pre-creates keys so every node knows the others' PeerIds, then listens on fixed-by-OS ports. */
export async function keysFor(scratch: Scratch, sites: string[]): Promise<Record<string, string>> {
  const ids: Record<string, string> = {}
  for (const s of sites) ids[s] = await peerIdFromKeyFile(scratch.path(`${s}.key`))
  return ids
}

export function freeNetwork(opts: Libp2pNetworkOptions): Promise<Libp2pNetwork> {
  return libp2pNetwork({ dialIntervalMs: 50, maxDialIntervalMs: 200, ...opts })
}
