import type { Logger } from './api.js'
import { stateToWire, type KeyState } from './conflict.js'
import { BOOTSTRAP_CHUNK_BYTES, BOOTSTRAP_CHUNK_KEYS, BOOTSTRAP_MAX_SERVING, FRAME_OVERHEAD_BYTES } from './limits.js'
import type { Frame, Vector } from './protocol.js'
import type { ShardStore } from './shard-store.js'

/** What serving a bootstrap needs from its site. */
export interface BootstrapSourceHost {
  readonly log: Logger
  /** The network's frame cap, if any. */
  readonly maxFrameBytes: number | undefined
  /** This site's applied vector right now. */
  appliedVector(): Vector
  /** Committed (visible) states of keys, read in one synchronous step. */
  readStates(keys: string[]): Promise<Map<string, KeyState>>
  send(peer: string, f: Frame): boolean
}

/**
 * The source side of a bootstrap: answers `bsreq` with one chunk of key states of one of its
 * shards, in key order, plus its applied vector before and after the read (see docs/protocol.md,
 * "Bootstrap", for why the receiver ends causally consistent). Stateless between requests, so a
 * receiver resumes after a dropped connection by asking again from its cursor.
 */
export class BootstrapSource {
  private readonly serving = new Set<string>()

  constructor(
    private readonly host: BootstrapSourceHost,
    private readonly shards: readonly ShardStore[],
  ) {}

  request(peer: string, shard: number, after: string): void {
    // One request per peer at a time (the receiver paces itself), a few peers at once.
    if (this.serving.has(peer) || this.serving.size >= BOOTSTRAP_MAX_SERVING) return
    this.serving.add(peer)
    void this.chunk(shard, after)
      .then((f) => {
        if (!this.host.send(peer, f)) this.host.log.debug({ peer }, 'bootstrap chunk not sent (peer gone or busy): it asks again')
      })
      .catch((e) => this.host.log.warn({ peer, err: e }, 'bootstrap chunk failed'))
      .finally(() => this.serving.delete(peer))
  }

  private async chunk(shard: number, after: string): Promise<Frame & { t: 'bschunk' }> {
    const before = this.host.appliedVector()
    if (shard >= this.shards.length) return { t: 'bschunk', reqShard: shard, reqAfter: after, before, after: before, states: [], nextShard: shard, nextAfter: '', done: true }
    const keys = await this.shards[shard]!.stateKeysAfter(after, BOOTSTRAP_CHUNK_KEYS)
    const read = keys.length > 0 ? await this.host.readStates(keys) : new Map<string, KeyState>()
    // Let every continuation queued by the commits we just observed run (they mark writes
    // applied), so `after` covers every write visible in these states.
    await new Promise<void>((r) => setImmediate(r))
    const afterV = this.host.appliedVector()
    const budget = Math.min(BOOTSTRAP_CHUNK_BYTES, (this.host.maxFrameBytes ?? Infinity) / 2 - FRAME_OVERHEAD_BYTES)
    const states: Array<[string, unknown[]]> = []
    let bytes = 0
    let last = after
    let cut = false
    for (const k of keys) {
      if (bytes >= budget && states.length > 0) {
        cut = true
        break
      }
      last = k
      const st = read.get(k)!
      if (st.length === 0) continue // collected meanwhile: nothing to copy
      for (const s of st) bytes += (s.value?.length ?? 0) + 48
      bytes += k.length * 3
      states.push([k, stateToWire(st)])
    }
    const nextShard = cut || keys.length === BOOTSTRAP_CHUNK_KEYS ? shard : shard + 1
    const nextAfter = nextShard === shard ? last : ''
    return { t: 'bschunk', reqShard: shard, reqAfter: after, before, after: afterV, states, nextShard, nextAfter, done: nextShard >= this.shards.length }
  }
}
