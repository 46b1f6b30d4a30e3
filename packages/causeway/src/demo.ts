/**
 * `npm start`: an embedded multi-site demo. Three edge sites, each with LevelDB shards on disk,
 * replicate over an emulated WAN (in-process, 40 ms one-way). It shows a write appearing at the
 * other sites, causal order across sites, a partition that leaves every site writable, and
 * convergence (with a return-all conflict) after the partition heals. Ends by itself, exit code 0.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSimNetwork } from '@causeway/sim'
import { openSite, type Site, type Value } from './index.js'

const ONE_WAY_MS = 40
const color = process.stdout.isTTY && !process.env.NO_COLOR
const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[22m` : s)
const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[22m` : s)
const t0 = performance.now()
const stamp = () => dim(`[${String(Math.round(performance.now() - t0)).padStart(5)} ms]`)
const say = (s: string) => console.log(`${stamp()} ${s}`)
const step = (s: string) => console.log(`\n${bold(s)}`)
const show = (v: Value | undefined) => JSON.stringify(v)

/** Resolve when `key` is visible at `site`; returns how long it took. */
function whenVisible(site: Site, key: string, timeoutMs = 10_000): Promise<number> {
  const start = performance.now()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`${key} did not reach ${site.id}`))
    }, timeoutMs)
    const off = site.onApplied((keys) => {
      if (keys.includes(key)) {
        clearTimeout(timer)
        off()
        resolve(performance.now() - start)
      }
    })
  })
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'causeway-demo-'))
  const net = createSimNetwork({ latencyMs: ONE_WAY_MS, jitterMs: 5, seed: 42 })
  const ids = ['paris', 'lyon', 'nantes']
  const conflicts = { default: 'lww' as const, prefixes: { 'carts/': 'return-all' as const } }
  const sites: Record<string, Site> = {}
  try {
    step(`1. Three edge sites, ${ONE_WAY_MS} ms apart (emulated WAN), 4 LevelDB shards each`)
    for (const id of ids) {
      sites[id] = await openSite({ id, dir: join(root, id), shards: 4, conflicts, network: net.adapter(id), heartbeatMs: 200 })
      say(`opened site ${bold(id)} in ${join(root, id)}`)
    }
    const [paris, lyon, nantes] = ids.map((id) => sites[id]!)
    await waitConnected(ids.map((id) => sites[id]!))
    say(`all peers connected: ${paris!.status().peers.map((p) => `${p.id}=${p.state}`).join(', ')}`)

    step('2. A write at Paris appears at Lyon and Nantes after about one WAN hop')
    const atLyon = whenVisible(lyon!, 'vm/42')
    const atNantes = whenVisible(nantes!, 'vm/42')
    const s = paris!.session()
    let t = performance.now()
    await s.put('vm/42', { state: 'building', host: 'paris-node-3' })
    say(`paris: put vm/42 acknowledged locally in ${(performance.now() - t).toFixed(1)} ms (durable: fsync, no WAN wait)`)
    say(`lyon:   vm/42 visible after ${(await atLyon).toFixed(1)} ms`)
    say(`nantes: vm/42 visible after ${(await atNantes).toFixed(1)} ms`)

    step('3. Causal order: Lyon reacts to what it read; Nantes never sees the reaction without its cause')
    const ls = lyon!.session()
    const vm = await ls.get('vm/42')
    say(`lyon: read vm/42 = ${show(vm?.value)}`)
    const eventAtNantes = whenVisible(nantes!, 'events/vm-42-1')
    await ls.put('events/vm-42-1', { type: 'scheduled', sawState: (vm?.value as { state: string }).state })
    await eventAtNantes
    const ns = nantes!.session()
    const ev = await ns.get('events/vm-42-1')
    const cause = await ns.get('vm/42')
    say(`nantes: event ${show(ev?.value)} is visible, and so is its cause vm/42 = ${show(cause?.value)}`)
    // The context token carries the session to another site.
    const moved = paris!.session({ context: ls.context(), waitMs: 2000 })
    say(`a session continued from lyon to paris with its context reads ${show((await moved.get('events/vm-42-1'))?.value)}`)

    step('4. Partition: Nantes is cut off. Every site keeps serving reads and writes locally')
    net.partition(['paris', 'lyon'], ['nantes'])
    await waitState(nantes!, 'disconnected')
    const latencies: number[] = []
    for (const [site, value] of [[paris!, 'paris-cart'], [nantes!, 'nantes-cart']] as const) {
      const ss = site.session()
      t = performance.now()
      await ss.put('carts/alice', [value])
      await ss.put('vm/42', { state: site === paris ? 'active' : 'error', host: `${site.id}-node-1` })
      latencies.push(performance.now() - t)
      say(`${site.id}: wrote carts/alice and vm/42 during the partition (${(performance.now() - t).toFixed(1)} ms for two durable puts)`)
    }
    const st = nantes!.status()
    say(`nantes status: ${st.peers.map((p) => `${p.id}=${p.state} (last seen ${p.lastSeenMs} ms ago, ${p.pendingOut} writes waiting)`).join(', ')}`)
    say(`paris reads vm/42 = ${show((await paris!.session().get('vm/42'))?.value)}; nantes reads vm/42 = ${show((await nantes!.session().get('vm/42'))?.value)}`)

    step('5. Heal: the queued writes flow both ways and every site converges')
    t = performance.now()
    net.heal()
    await net.settle()
    say(`converged ${(performance.now() - t).toFixed(0)} ms after the heal`)
    for (const site of [paris!, lyon!, nantes!]) {
      const m = await site.session().getMany(['vm/42', 'carts/alice'])
      const cart = m.get('carts/alice')
      const sibs = cart?.siblings?.map((x) => show(x.value)).join(' | ')
      say(`${site.id.padEnd(6)}: vm/42 = ${show(m.get('vm/42')?.value)} (last writer wins); carts/alice siblings = ${sibs}`)
    }

    step('6. Return-all: a session that read both siblings resolves them once, everywhere')
    const resolver = lyon!.session()
    const both = await resolver.get('carts/alice')
    const merged = [...new Set((both?.siblings ?? []).flatMap((x) => x.value as string[]))].sort()
    await resolver.put('carts/alice', merged)
    await net.settle()
    for (const site of [paris!, lyon!, nantes!]) {
      const e = await site.session().get('carts/alice')
      say(`${site.id.padEnd(6)}: carts/alice = ${show(e?.value)}${e?.siblings ? ' (still conflicting!)' : ''}`)
    }
    step('Done.')
    say(`bytes exchanged between sites: ${net.stats().bytes} in ${net.stats().frames} frames`)
  } finally {
    await Promise.allSettled(Object.values(sites).map((x) => x.close()))
    await net.close()
    rmSync(root, { recursive: true, force: true })
  }
}

async function waitConnected(sites: Site[]): Promise<void> {
  const deadline = performance.now() + 10_000
  while (!sites.every((s) => s.status().peers.every((p) => p.state === 'connected'))) {
    if (performance.now() > deadline) throw new Error('sites did not connect')
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function waitState(site: Site, state: string): Promise<void> {
  const deadline = performance.now() + 10_000
  while (!site.status().peers.every((p) => p.state === state)) {
    if (performance.now() > deadline) throw new Error(`${site.id} peers did not become ${state}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
