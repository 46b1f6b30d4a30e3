#!/usr/bin/env node
// Finds import cycles among the relative imports of a package's sources (type-only ones included).
// Usage: node scripts/check-cycles.mjs packages/core/src   (exit code 1 when there is a cycle)
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const root = process.argv[2] ?? 'packages/core/src'
const files = []
const walk = (d) => {
  for (const f of readdirSync(d)) {
    const p = join(d, f)
    if (statSync(p).isDirectory()) walk(p)
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) files.push(p)
  }
}
walk(root)
const graph = new Map()
for (const f of files) {
  const deps = new Set()
  for (const m of readFileSync(f, 'utf8').matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)'/g)) deps.add(relative(root, resolve(dirname(f), m[1].replace(/\.js$/, '.ts'))))
  graph.set(relative(root, f), [...deps])
}
const state = new Map()
const cycles = []
const visit = (n, stack) => {
  state.set(n, 1)
  stack.push(n)
  for (const m of graph.get(n) ?? []) {
    if (state.get(m) === 1) cycles.push([...stack.slice(stack.indexOf(m)), m].join(' -> '))
    else if (!state.has(m)) visit(m, stack)
  }
  stack.pop()
  state.set(n, 2)
}
for (const n of graph.keys()) if (!state.has(n)) visit(n, [])
if (process.argv.includes('--graph')) for (const [f, d] of [...graph].sort()) console.log(`${f} -> ${d.join(', ')}`)
if (cycles.length > 0) {
  console.log(`import cycles in ${root}:\n${cycles.join('\n')}`)
  process.exit(1)
}
console.log(`${root}: ${graph.size} files, no import cycles`)
