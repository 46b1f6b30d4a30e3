/**
 * A tiny dependency-free SVG chart generator: line charts (linear or log axes), grouped bar charts
 * and CDFs. Output is a standalone SVG string (works in GitHub's markdown renderer and browsers).
 */
import type { Figure, Series } from './harness.js'

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf']
const W = 720
const H = 420
const M = { left: 78, right: 20, top: 44, bottom: 58 }
const LEGEND_ROW = 18

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function tickLabel(v: number): string {
  const a = Math.abs(v)
  if (a === 0) return '0'
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`
  if (a >= 1) return `${+v.toPrecision(4)}`
  return `${+v.toPrecision(2)}`
}

/** "Nice" linear ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1]
  if (hi === lo) {
    hi = lo === 0 ? 1 : lo * 1.1 + (lo < 0 ? 0 : 0)
    if (hi === lo) hi = lo + 1
  }
  const span = hi - lo
  const raw = span / count
  const mag = Math.pow(10, Math.floor(Math.log10(raw)))
  const norm = raw / mag
  const step = (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag
  const start = Math.floor(lo / step) * step
  const out: number[] = []
  // the last tick is the first one at or above hi, so every point is inside the plot
  for (let v = start; out.length === 0 || out[out.length - 1]! < hi; v += step) out.push(+v.toPrecision(12))
  if (out.length < 2) out.push(+(start + step).toPrecision(12))
  return out
}

function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo))
  const b = Math.ceil(Math.log10(hi))
  const out: number[] = []
  for (let e = a; e <= b; e++) out.push(Math.pow(10, e))
  if (out.length <= 2) {
    const more: number[] = []
    for (let e = a; e <= b; e++) for (const m of [1, 2, 5]) more.push(m * Math.pow(10, e))
    return more.filter((v) => v >= lo / 1.0001 && v <= hi * 1.0001)
  }
  return out
}

interface Axis {
  scale(v: number): number
  ticks: number[]
}

function linearAxis(lo: number, hi: number, a: number, b: number, zero: boolean): Axis {
  if (zero) lo = Math.min(0, lo)
  const ticks = niceTicks(lo, hi)
  const t0 = ticks[0]!
  const t1 = ticks[ticks.length - 1]!
  return { ticks, scale: (v) => a + ((v - t0) / (t1 - t0 || 1)) * (b - a) }
}

function logAxis(lo: number, hi: number, a: number, b: number): Axis {
  lo = Math.max(lo, 1e-9)
  hi = Math.max(hi, lo * 10)
  const ticks = logTicks(lo, hi)
  const l0 = Math.log10(Math.min(ticks[0]!, lo))
  const l1 = Math.log10(Math.max(ticks[ticks.length - 1]!, hi))
  return { ticks, scale: (v) => a + ((Math.log10(Math.max(v, 1e-9)) - l0) / (l1 - l0 || 1)) * (b - a) }
}

function frame(fig: Figure, legendRows: number, body: string): string {
  const height = H + legendRows * LEGEND_ROW
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(fig.title)}</text>`,
    body,
    `<text x="${M.left + (W - M.left - M.right) / 2}" y="${H - 14}" text-anchor="middle">${esc(fig.xLabel)}</text>`,
    `<text transform="translate(16 ${M.top + (H - M.top - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(fig.yLabel)}</text>`,
    '</svg>',
  ].join('\n')
}

function legend(series: Series[] | string[], y0: number): string {
  const names = series.map((s) => (typeof s === 'string' ? s : s.name))
  const out: string[] = []
  const perRow = 3
  const colW = (W - M.left - M.right) / perRow
  names.forEach((name, i) => {
    const x = M.left + (i % perRow) * colW
    const y = y0 + Math.floor(i / perRow) * LEGEND_ROW
    const c = PALETTE[i % PALETTE.length]
    out.push(`<rect x="${x}" y="${y - 9}" width="14" height="10" fill="${c}"/>`)
    out.push(`<text x="${x + 20}" y="${y}">${esc(name)}</text>`)
  })
  return out.join('\n')
}

function axes(x: Axis, y: Axis, xLabels?: (v: number) => string): string {
  const out: string[] = []
  const x0 = M.left
  const x1 = W - M.right
  const y0 = H - M.bottom
  const y1 = M.top
  for (const t of y.ticks) {
    const py = y.scale(t)
    if (py < y1 - 1 || py > y0 + 1) continue
    out.push(`<line x1="${x0}" x2="${x1}" y1="${py.toFixed(1)}" y2="${py.toFixed(1)}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${x0 - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end">${tickLabel(t)}</text>`)
  }
  for (const t of x.ticks) {
    const px = x.scale(t)
    if (px < x0 - 1 || px > x1 + 1) continue
    out.push(`<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${y0}" y2="${y0 + 5}" stroke="#333"/>`)
    out.push(`<text x="${px.toFixed(1)}" y="${y0 + 19}" text-anchor="middle">${esc(xLabels ? xLabels(t) : tickLabel(t))}</text>`)
  }
  out.push(`<line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}" stroke="#333"/>`)
  out.push(`<line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}" stroke="#333"/>`)
  return out.join('\n')
}

function noData(fig: Figure): string {
  return frame(fig, 0, `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no data</text>`)
}

export function lineChart(fig: Figure): string {
  const pts = fig.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  if (pts.length === 0) return noData(fig)
  const xs = pts.map((p) => p[0])
  const ys = pts.map((p) => p[1])
  const xa = fig.logX
    ? logAxis(Math.min(...xs), Math.max(...xs), M.left, W - M.right)
    : linearAxis(Math.min(...xs), Math.max(...xs), M.left, W - M.right, fig.kind === 'cdf' ? false : false)
  const ya = fig.logY
    ? logAxis(Math.min(...ys), Math.max(...ys), H - M.bottom, M.top)
    : fig.kind === 'cdf'
      ? { ticks: [0, 0.25, 0.5, 0.75, 1], scale: (v: number) => H - M.bottom + v * (M.top - (H - M.bottom)) }
      : linearAxis(Math.min(...ys), Math.max(...ys), H - M.bottom, M.top, true)
  const body: string[] = [axes(xa, ya)]
  fig.series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length]
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
    if (p.length === 0) return
    let d = ''
    if (fig.kind === 'cdf') {
      // step function
      p.forEach(([x, y], j) => {
        const px = xa.scale(x).toFixed(1)
        const py = ya.scale(y).toFixed(1)
        if (j === 0) d += `M${px},${ya.scale(0).toFixed(1)} L${px},${py}`
        else d += ` L${px},${ya.scale(p[j - 1]![1]).toFixed(1)} L${px},${py}`
      })
    } else {
      d = p.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${xa.scale(x).toFixed(1)},${ya.scale(y).toFixed(1)}`).join(' ')
    }
    body.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`)
    if (fig.kind !== 'cdf') {
      for (const [x, y] of p) body.push(`<circle cx="${xa.scale(x).toFixed(1)}" cy="${ya.scale(y).toFixed(1)}" r="3" fill="${c}"/>`)
    }
  })
  const rows = Math.ceil(fig.series.length / 3)
  body.push(legend(fig.series, H + 4))
  return frame(fig, rows, body.join('\n'))
}

export function barChart(fig: Figure): string {
  const cats = fig.categories ?? []
  const vals = fig.series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v))
  if (cats.length === 0 || vals.length === 0) return noData(fig)
  const ya = fig.logY
    ? logAxis(Math.max(Math.min(...vals), 1e-9), Math.max(...vals), H - M.bottom, M.top)
    : linearAxis(0, Math.max(...vals), H - M.bottom, M.top, true)
  const plotW = W - M.left - M.right
  const groupW = plotW / cats.length
  const barW = Math.max(2, (groupW * 0.8) / Math.max(1, fig.series.length))
  const xa: Axis = { ticks: cats.map((_, i) => i), scale: (i) => M.left + groupW * (i + 0.5) }
  const body: string[] = [axes(xa, ya, (i) => cats[i] ?? '')]
  const base = ya.scale(fig.logY ? (ya.ticks[0] ?? 1) : 0)
  fig.series.forEach((s, si) => {
    const c = PALETTE[si % PALETTE.length]
    for (const [i, v] of s.points) {
      if (!Number.isFinite(v)) continue
      const x = M.left + groupW * i + groupW * 0.1 + si * barW
      const y = ya.scale(v)
      body.push(`<rect x="${x.toFixed(1)}" y="${Math.min(y, base).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${Math.abs(base - y).toFixed(1)}" fill="${c}"><title>${esc(s.name)}: ${tickLabel(v)}</title></rect>`)
    }
  })
  const rows = Math.ceil(fig.series.length / 3)
  body.push(legend(fig.series, H + 4))
  return frame(fig, rows, body.join('\n'))
}

export function renderFigure(fig: Figure): string {
  return fig.kind === 'bar' ? barChart(fig) : lineChart(fig)
}
