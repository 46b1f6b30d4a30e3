import type { NetworkHandler, SiteProgress } from '@causeway/core'

/**
 * The one fake NetworkHandler of the network tests (sim, libp2p and the compliance suite): it
 * records every callback, and its inspect() answers whatever the test puts in `progress`.
 */
export class RecordingHandler implements NetworkHandler {
  /** peerUp / peerDown in call order, as `up:<peer>` / `down:<peer>`. */
  readonly events: string[] = []
  /** Every frame in arrival order. */
  readonly frames: Array<{ peer: string; bytes: Uint8Array }> = []
  /** Peers whose drain() was called, in call order. */
  readonly drains: string[] = []
  progress: SiteProgress = { received: {}, applied: {}, idle: true }

  /** The handler to pass to start() (this object; tests may override its methods). */
  get handler(): NetworkHandler { return this }
  get ups(): number { return this.events.filter((e) => e.startsWith('up:')).length }
  get downs(): number { return this.events.filter((e) => e.startsWith('down:')).length }

  peerUp(peer: string): void { this.events.push(`up:${peer}`) }
  peerDown(peer: string): void { this.events.push(`down:${peer}`) }
  frame(peer: string, bytes: Uint8Array): void { this.frames.push({ peer, bytes }) }
  drain(peer: string): void { this.drains.push(peer) }
  inspect(): SiteProgress { return this.progress }

  framesFrom(peer: string): Uint8Array[] { return this.frames.filter((f) => f.peer === peer).map((f) => f.bytes) }
  totalFrames(): number { return this.frames.length }
  /** Events about one peer only. */
  eventsOf(peer: string): string[] { return this.events.filter((e) => e.endsWith(`:${peer}`)) }
}

/** Poll `cond` every 10 ms (real timers) until it holds; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
