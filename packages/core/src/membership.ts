import type { Logger } from './api.js'
import { CausewayError } from './errors.js'
import { isSiteId } from './ids.js'
import type { NetworkAdapter } from './network.js'
import type { Frame } from './protocol.js'
import type { Shard } from './shard.js'

/** What membership needs from its site. */
export interface MembershipHost {
  readonly siteId: string
  readonly network: NetworkAdapter | undefined
  readonly log: Logger
  /** The shard that keeps the membership records (shard 0). */
  readonly shard: Shard
  /** Send a frame to every connected peer. */
  broadcast(f: Frame): void
  /** Send a frame to one peer. */
  send(peer: string, f: Frame): void
}

/**
 * Sites removed from the deployment for good. A removal is a grow-only set, persisted in each
 * site's meta (`m!rm!<site>`) before it takes effect, and gossiped: on every new connection and on
 * every change, so it reaches every site however the mesh is shaped. A removed site holds nothing
 * back (trimming, stability), its frames are refused, and it shows in status() as 'removed'.
 */
export class Membership {
  private readonly removed = new Set<string>()
  /** Removals being persisted (a second gossip of the same site must not race the first). */
  private readonly pending = new Map<string, Promise<void>>()

  constructor(private readonly host: MembershipHost) {}

  /** Read the removals recorded by earlier runs. */
  async load(): Promise<void> {
    for (const s of (await this.host.shard.readMeta()).removed) this.removed.add(s)
  }

  isRemoved(site: string): boolean {
    return this.removed.has(site)
  }

  list(): string[] {
    return [...this.removed].sort()
  }

  /** site.removeMember: validated here, then recorded, enforced and gossiped. */
  async remove(site: string): Promise<void> {
    if (!isSiteId(site)) throw new CausewayError('INVALID_ARGUMENT', `not a site id: ${JSON.stringify(site)}`)
    if (site === this.host.siteId) throw new CausewayError('INVALID_ARGUMENT', 'a site cannot remove itself; call removeMember at another site')
    await this.apply(site)
  }

  /** A `removed` frame from a peer: adopt every removal we did not know. */
  received(from: string, sites: string[]): void {
    for (const s of sites) {
      if (s === this.host.siteId) {
        this.host.log.error({ from }, 'this site was removed from the deployment; its peers refuse it from now on')
        continue
      }
      if (!this.removed.has(s)) void this.apply(s).catch((e) => this.host.log.warn({ err: e, site: s }, 'recording a removal failed'))
    }
  }

  /** A connection came up: tell the peer every removal we know (cheap: a list of ids). */
  peerUp(peer: string): void {
    if (this.removed.size > 0) this.host.send(peer, { t: 'removed', sites: this.list() })
  }

  private apply(site: string): Promise<void> {
    if (this.removed.has(site)) return Promise.resolve()
    let p = this.pending.get(site)
    if (!p) {
      p = (async () => {
        // Durable first: a removal that counted and was then forgotten after a crash would let the
        // removed site back in.
        await this.host.shard.markRemoved(site)
        this.removed.add(site)
        this.host.log.info({ site }, 'site removed from the deployment')
        // Stop dialing it and drop the link (the network's allow-list), where the network can.
        this.host.network?.removePeer?.(site)
        this.host.network?.disconnect?.(site)
        this.host.broadcast({ t: 'removed', sites: [site] })
      })().finally(() => this.pending.delete(site))
      this.pending.set(site, p)
    }
    return p
  }
}
