import type { NetworkHandler, SiteProgress } from '@causeway/core'

/** A NetworkHandler that records everything and whose inspect() the test controls. */
export interface FakeHandler {
  handler: NetworkHandler
  events: string[]
  frames: Array<{ peer: string; bytes: Uint8Array }>
  drains: string[]
  progress: SiteProgress
}

export function fakeHandler(): FakeHandler {
  const f: FakeHandler = {
    events: [],
    frames: [],
    drains: [],
    progress: { received: {}, applied: {}, idle: true },
    handler: {
      peerUp: (p) => f.events.push(`up:${p}`),
      peerDown: (p) => f.events.push(`down:${p}`),
      frame: (peer, bytes) => f.frames.push({ peer, bytes }),
      drain: (p) => f.drains.push(p),
      inspect: () => f.progress,
    },
  }
  return f
}

/** Lets queued microtasks (peer events) run. */
export async function ticks(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve()
}

export function bytesOf(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs)
}
