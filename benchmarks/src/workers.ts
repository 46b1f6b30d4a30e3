/** Parent side of site-worker.ts: spawn a site process (tracked, killed on exit) and call it. */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { killChild, spawnTracked, withTimeout } from './harness.js'

const here = path.dirname(fileURLToPath(import.meta.url))

export interface Worker {
  child: ChildProcess
  call<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>
  stop(): Promise<void>
  stderr(): string
}

export async function startWorker(name: string): Promise<Worker> {
  const script = path.join(here, 'site-worker.js')
  const child = spawnTracked(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, CAUSEWAY_BENCH_WORKER: '1' } })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000)
  })
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  let ready!: () => void
  let failed!: (e: Error) => void
  const readyP = new Promise<void>((res, rej) => {
    ready = res
    failed = rej
  })
  child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    if (m.id === 0) return ready()
    const p = pending.get(m.id)
    if (!p) return
    pending.delete(m.id)
    if (m.ok) p.resolve(m.result)
    else p.reject(new Error(`${name}: ${m.error}`))
  })
  child.once('exit', (code, sig) => {
    const e = new Error(`${name} exited (${code ?? sig})${err ? ': ' + err.trim().split('\n').slice(-3).join(' | ') : ''}`)
    failed(e)
    for (const p of pending.values()) p.reject(e)
    pending.clear()
  })
  await withTimeout(readyP, 20_000, `${name} start`)
  let nextId = 1
  return {
    child,
    call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000) {
      const id = nextId++
      const p = new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
        child.send({ id, cmd, ...args })
      })
      return withTimeout(p, timeoutMs, `${name} ${cmd}`)
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          await withTimeout(
            new Promise<void>((resolve) => {
              const id = nextId++
              pending.set(id, { resolve: () => resolve(), reject: () => resolve() })
              child.send({ id, cmd: 'close' })
            }),
            10_000,
            `${name} close`,
          )
        } catch {
          /* killed below */
        }
      }
      await killChild(child, 3000)
    },
    stderr: () => err,
  }
}
