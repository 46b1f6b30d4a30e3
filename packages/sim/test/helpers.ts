import { RecordingHandler } from '../../../test/compliance/handler.js'

/** The one fake handler of the network tests (shared with libp2p's and the compliance suite): a fresh RecordingHandler (tests set its `progress` to steer settle()). */
export function fakeHandler(): RecordingHandler {
  return new RecordingHandler()
}

/** Lets queued microtasks (peer events) run. */
export async function ticks(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve()
}

export function bytesOf(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs)
}
