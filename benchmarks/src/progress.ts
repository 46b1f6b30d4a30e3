/** Progress display: a cli-progress bar on a TTY, throttled plain lines otherwise. */
import cliProgress from 'cli-progress'

export interface Progress {
  start(name: string): void
  update(done: number, total: number, label?: string): void
  stop(finalText: string): void
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, enabled = stream.isTTY === true): Progress {
  if (enabled) {
    let bar: cliProgress.SingleBar | undefined
    let current = ''
    return {
      start(name) {
        current = name
        bar = new cliProgress.SingleBar(
          {
            format: `{name} [{bar}] {percentage}% | {value}/{total} | {label}`,
            hideCursor: true,
            clearOnComplete: true,
            stream,
            etaBuffer: 20,
          },
          cliProgress.Presets.shades_classic,
        )
        bar.start(1, 0, { name: current.padEnd(18), label: 'starting' })
      },
      update(done, total, label = '') {
        if (!bar) return
        bar.setTotal(Math.max(1, total))
        bar.update(Math.min(done, total), { name: current.padEnd(18), label })
      },
      stop(finalText) {
        bar?.stop()
        bar = undefined
        stream.write(`${finalText}\n`)
      },
    }
  }
  let last = 0
  let name = ''
  return {
    start(n) {
      name = n
      last = 0
      stream.write(`[${name}] starting\n`)
    },
    update(done, total, label = '') {
      const now = performance.now()
      if (now - last < 10_000 && done < total) return
      last = now
      stream.write(`[${name}] ${done}/${total} ${label}\n`)
    },
    stop(finalText) {
      stream.write(`${finalText}\n`)
    },
  }
}
