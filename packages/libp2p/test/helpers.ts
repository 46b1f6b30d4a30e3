import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NetworkHandler, SiteProgress, Logger } from '@causeway/core'
import { libp2pNetwork, peerIdFromKeyFile } from '../src/index.js'
import type { Libp2pNetwork, Libp2pNetworkOptions } from '../src/index.js'

export class FakeHandler implements NetworkHandler {
  readonly events: string[] = []
  readonly frames = new Map<string, Uint8Array[]>()
  ups = 0
  downs = 0
  drains = 0
  peerUp(peer: string): void { this.ups++; this.events.push(`up:${peer}`) }
  peerDown(peer: string): void { this.downs++; this.events.push(`down:${peer}`) }
  frame(peer: string, bytes: Uint8Array): void {
    let list = this.frames.get(peer)
    if (list === undefined) this.frames.set(peer, (list = []))
    list.push(bytes)
  }
  drain(peer: string): void { this.drains++; this.events.push(`drain:${peer}`) }
  inspect(): SiteProgress { return { received: {}, applied: {}, idle: true } }
  framesFrom(peer: string): Uint8Array[] { return this.frames.get(peer) ?? [] }
  totalFrames(): number { let n = 0; for (const l of this.frames.values()) n += l.length; return n }
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

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
