/**
 * A TCP delay proxy: emulated WAN latency for real processes (the kernel here has no `tc netem`).
 * Listens on 127.0.0.1:0, forwards every connection to a target, delays each chunk by the one-way
 * latency in each direction and preserves order. It also counts the bytes in each direction, so
 * benchmarks can report bytes on the wire.
 */
import net from 'node:net'
import { performance } from 'node:perf_hooks'

export interface DelayProxyOptions {
  /** Where to forward. */
  targetHost?: string
  targetPort: number
  /** One-way latency in ms (applied to each direction). May be changed later with `setLatency`. */
  latencyMs?: number
  /** Listen port (default 0: a free port). */
  port?: number
}

export interface DelayProxy {
  readonly host: string
  readonly port: number
  /** Bytes client→target and target→client forwarded so far. */
  readonly bytesUp: number
  readonly bytesDown: number
  readonly connections: number
  setLatency(ms: number): void
  resetCounters(): void
  /** Drop every open connection (a network cut); new connections are still accepted. */
  cut(): void
  close(): Promise<void>
}

interface Pending {
  due: number
  chunk: Buffer
}

/** One direction of a connection: a FIFO of delayed chunks. */
class DelayedPipe {
  private queue: Pending[] = []
  private head = 0
  private timer: NodeJS.Timeout | undefined
  private lastDue = 0
  private ended = false
  private closed = false

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly latency: () => number,
    private readonly count: (n: number) => void,
  ) {
    from.on('data', (chunk: Buffer) => this.push(chunk))
    from.on('end', () => {
      this.ended = true
      this.flush()
    })
  }

  private push(chunk: Buffer): void {
    if (this.closed) return
    const now = performance.now()
    const due = Math.max(now + this.latency(), this.lastDue)
    this.lastDue = due
    this.queue.push({ due, chunk })
    this.flush()
  }

  private flush(): void {
    if (this.closed) return
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    const now = performance.now()
    while (this.head < this.queue.length && this.queue[this.head]!.due <= now + 0.5) {
      const { chunk } = this.queue[this.head++]!
      this.count(chunk.length)
      if (!this.to.destroyed) {
        const ok = this.to.write(chunk)
        if (!ok && !this.from.isPaused()) {
          this.from.pause()
          this.to.once('drain', () => this.from.resume())
        }
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    if (this.head < this.queue.length) {
      const wait = Math.max(0, this.queue[this.head]!.due - now)
      this.timer = setTimeout(() => this.flush(), wait)
    } else if (this.ended && !this.to.destroyed) {
      this.to.end()
    }
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.queue = []
    this.head = 0
  }
}

export async function startDelayProxy(options: DelayProxyOptions): Promise<DelayProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1'
  let latencyMs = options.latencyMs ?? 0
  let bytesUp = 0
  let bytesDown = 0
  let connections = 0
  const sockets = new Set<net.Socket>()
  const pipes = new Set<DelayedPipe>()

  const server = net.createServer({ noDelay: true }, (client) => {
    connections++
    const upstream = net.connect({ host: targetHost, port: options.targetPort, noDelay: true })
    sockets.add(client)
    sockets.add(upstream)
    const up = new DelayedPipe(client, upstream, () => latencyMs, (n) => (bytesUp += n))
    const down = new DelayedPipe(upstream, client, () => latencyMs, (n) => (bytesDown += n))
    pipes.add(up)
    pipes.add(down)
    const teardown = () => {
      up.close()
      down.close()
      pipes.delete(up)
      pipes.delete(down)
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', teardown)
    upstream.on('error', teardown)
    client.on('close', () => {
      // let queued data drain to upstream before closing it (its 'end' handler does that)
      if (upstream.writableEnded || upstream.destroyed) teardown()
    })
    upstream.on('close', () => {
      if (client.writableEnded || client.destroyed) teardown()
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const addr = server.address() as net.AddressInfo

  return {
    host: '127.0.0.1',
    port: addr.port,
    get bytesUp() {
      return bytesUp
    },
    get bytesDown() {
      return bytesDown
    },
    get connections() {
      return connections
    },
    setLatency(ms: number) {
      if (!(ms >= 0)) throw new RangeError(`latency must be >= 0 ms, got ${ms}`)
      latencyMs = ms
    },
    resetCounters() {
      bytesUp = 0
      bytesDown = 0
    },
    cut() {
      for (const p of pipes) p.close()
      pipes.clear()
      for (const s of sockets) s.destroy()
      sockets.clear()
    },
    close() {
      for (const p of pipes) p.close()
      for (const s of sockets) s.destroy()
      sockets.clear()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A free TCP port on 127.0.0.1 (bind to 0, read, release). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}
