import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { createRandom } from '../../sim/src/random.js'
import { checkHistory, createCausalModel, createHistory, type CheckResult, type Entry, type ViolationKind } from '../src/index.js'

const v = (time: number, site: string) => ({ time, site })
const e = (key: string, value: string, version: { time: number; site: string }): Entry => ({ key, value, version })
const sibs = (key: string, ...xs: Array<[string, { time: number; site: string }]>): Entry => ({
  key,
  value: xs[0]![0],
  version: xs[0]![1],
  siblings: xs.map(([value, version]) => ({ value, version })),
})

function kinds(r: CheckResult): ViolationKind[] {
  return [...new Set(r.violations.map((x) => x.kind))].sort()
}

describe('checker: bad patterns are detected', () => {
  it('ThinAirRead: a value nobody wrote', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('x', 'a1', v(1, 'a'))
    h.session('b', 'B').recordGet('x', e('x', 'zz', v(1, 'a')))
    expect(kinds(checkHistory(h))).toEqual(['ThinAirRead'])
  })

  it('ThinAirRead: a value with a version that did not write it', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('x', 'a1', v(1, 'a'))
    h.session('b', 'B').recordGet('x', e('x', 'a1', v(7, 'b')))
    expect(kinds(checkHistory(h))).toEqual(['ThinAirRead'])
  })

  it('CyclicCO: two sessions reading each other’s later writes', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    const B = h.session('b', 'B')
    A.recordGet('x', e('x', 'b1', v(2, 'b')))
    B.recordGet('y', e('y', 'a1', v(2, 'a')))
    A.recordPut('y', 'a1', v(2, 'a'))
    B.recordPut('x', 'b1', v(2, 'b'))
    expect(kinds(checkHistory(h))).toEqual(['CyclicCO'])
  })

  it('CyclicCO: a session reading its own future write', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordGet('x', e('x', 'a1', v(1, 'a')))
    A.recordPut('x', 'a1', v(1, 'a'))
    expect(kinds(checkHistory(h))).toEqual(['CyclicCO'])
  })

  it('WriteCOInitRead: absent although a causally prior put exists (via another key)', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('x', 'x1', v(1, 'a'))
    A.recordPut('y', 'y1', v(2, 'a'))
    const B = h.session('b', 'B')
    B.recordGet('y', e('y', 'y1', v(2, 'a')))
    B.recordGet('x', undefined)
    expect(kinds(checkHistory(h))).toEqual(['WriteCOInitRead'])
  })

  it('WriteCOInitRead: read-your-writes broken', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('x', 'x1', v(1, 'a'))
    A.recordGet('x', undefined)
    expect(kinds(checkHistory(h))).toEqual(['WriteCOInitRead'])
  })

  it('WriteCOInitRead: a delete older than the put does not explain absence', () => {
    const h = createHistory()
    h.session('b', 'B').recordDelete('x', v(1, 'b'))
    const A = h.session('a', 'A')
    A.recordPut('x', 'x1', v(5, 'a'))
    A.recordGet('x', undefined)
    expect(kinds(checkHistory(h))).toEqual(['WriteCOInitRead'])
  })

  it('WriteCORead: monotonic reads broken', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('x', 'a1', v(1, 'a'))
    A.recordPut('x', 'a2', v(2, 'a'))
    const B = h.session('b', 'B')
    B.recordGet('x', e('x', 'a2', v(2, 'a')))
    B.recordGet('x', e('x', 'a1', v(1, 'a')))
    expect(kinds(checkHistory(h))).toEqual(['WriteCORead'])
  })

  it('WriteCORead: a getMany snapshot mixing a new write with an overwritten dependency', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('x', 'x0', v(1, 'a'))
    A.recordPut('x', 'x1', v(2, 'a'))
    A.recordPut('y', 'y1', v(3, 'a'))
    const B = h.session('b', 'B')
    B.recordGetMany(['x', 'y'], new Map([['x', e('x', 'x0', v(1, 'a'))], ['y', e('y', 'y1', v(3, 'a'))]]))
    expect(kinds(checkHistory(h))).toEqual(['WriteCORead'])
  })

  it('WriteCORead: a read missing a delete that is co-before it', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('x', 'x1', v(1, 'a'))
    A.recordDelete('x', v(2, 'a'))
    A.recordGet('x', e('x', 'x1', v(1, 'a')))
    expect(kinds(checkHistory(h))).toEqual(['WriteCORead'])
  })

  it('CyclicCF: a write co-after another with a smaller version', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('x', 'a1', v(5, 'a'))
    const B = h.session('b', 'B')
    B.recordGet('x', e('x', 'a1', v(5, 'a')))
    B.recordPut('x', 'b1', v(3, 'b'))
    expect(kinds(checkHistory(h))).toEqual(['CyclicCF'])
  })

  it('CyclicCF: an lww read returning a lower version than a write it has seen', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('x', 'a1', v(5, 'a'))
    h.session('b', 'B').recordPut('x', 'b1', v(9, 'b'))
    const C = h.session('c', 'C')
    C.recordGet('x', e('x', 'a1', v(5, 'a')))
    C.recordGet('x', e('x', 'b1', v(9, 'b')))
    C.recordGet('x', e('x', 'a1', v(5, 'a')))
    expect(kinds(checkHistory(h))).toEqual(['CyclicCF'])
  })

  it('Divergence: sites disagree on the winner or on the sibling set', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('x', 'a1', v(1, 'a'))
    h.session('b', 'B').recordPut('x', 'b1', v(1, 'b'))
    const finalReads = new Map([
      ['a', new Map([['x', e('x', 'b1', v(1, 'b'))]])],
      ['b', new Map([['x', e('x', 'a1', v(1, 'a'))]])],
    ])
    expect(kinds(checkHistory(h, { finalReads }))).toEqual(['Divergence'])
    const finalRA = new Map([
      ['a', new Map([['x', sibs('x', ['b1', v(1, 'b')], ['a1', v(1, 'a')])]])],
      ['b', new Map([['x', e('x', 'b1', v(1, 'b'))]])],
    ])
    expect(kinds(checkHistory(h, { finalReads: finalRA, conflicts: 'return-all' }))).toEqual(['Divergence'])
    const finalAbsent = new Map([
      ['a', new Map<string, Entry | undefined>([['x', undefined]])],
      ['b', new Map([['x', e('x', 'b1', v(1, 'b'))]])],
    ])
    expect(kinds(checkHistory(h, { finalReads: finalAbsent }))).toEqual(['Divergence'])
  })

  it('FinalState: final reads that do not reflect the whole history', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('x', 'a1', v(1, 'a'))
    h.session('b', 'B').recordPut('x', 'b1', v(2, 'b'))
    const stale = new Map([['a', new Map([['x', e('x', 'a1', v(1, 'a'))]])]])
    expect(kinds(checkHistory(h, { finalReads: stale, complete: true }))).toEqual(['FinalState'])
    expect(kinds(checkHistory(h, { finalReads: stale }))).toEqual([]) // not complete: no claim
    const good = new Map([['a', new Map([['x', e('x', 'b1', v(2, 'b'))]])]])
    expect(kinds(checkHistory(h, { finalReads: good, complete: true }))).toEqual([])
    // return-all: a concurrent put is missing; a superseded one is still there.
    const missing = new Map([['a', new Map([['x', e('x', 'b1', v(2, 'b'))]])]])
    expect(kinds(checkHistory(h, { finalReads: missing, complete: true, conflicts: 'return-all' }))).toEqual(['FinalState'])
    const C = h.session('c', 'C')
    C.recordGet('x', sibs('x', ['b1', v(2, 'b')], ['a1', v(1, 'a')]))
    C.recordPut('x', 'c1', v(3, 'c'))
    const resurrected = new Map([['a', new Map([['x', sibs('x', ['c1', v(3, 'c')], ['a1', v(1, 'a')])]])]])
    expect(kinds(checkHistory(h, { finalReads: resurrected, complete: true, conflicts: 'return-all' }))).toEqual(['FinalState'])
    const fine = new Map([['a', new Map([['x', e('x', 'c1', v(3, 'c'))]])]])
    expect(kinds(checkHistory(h, { finalReads: fine, complete: true, conflicts: 'return-all' }))).toEqual([])
  })

  it('return-all: a sibling superseded by a write co-before the read', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('r', 'a1', v(1, 'a'))
    h.session('b', 'B').recordPut('r', 'b1', v(1, 'b'))
    const C = h.session('c', 'C')
    C.recordGet('r', sibs('r', ['b1', v(1, 'b')], ['a1', v(1, 'a')]))
    C.recordPut('r', 'c1', v(2, 'c')) // supersedes a1 and b1
    const D = h.session('d', 'D')
    D.recordGet('r', e('r', 'c1', v(2, 'c')))
    D.recordGet('r', sibs('r', ['b1', v(1, 'b')], ['a1', v(1, 'a')]))
    expect(kinds(checkHistory(h, { conflicts: 'return-all' }))).toEqual(['WriteCORead'])
  })

  it('return-all: a concurrent put co-before the read is missing', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('r', 'a1', v(1, 'a'))
    A.recordPut('y', 'y1', v(2, 'a'))
    h.session('c', 'C').recordPut('r', 'c1', v(1, 'c'))
    const D = h.session('d', 'D')
    D.recordGet('y', e('y', 'y1', v(2, 'a')))
    D.recordGet('r', e('r', 'c1', v(1, 'c')))
    expect(kinds(checkHistory(h, { conflicts: 'return-all' }))).toEqual(['WriteCORead'])
    const h2 = createHistory()
    const A2 = h2.session('a', 'A')
    A2.recordPut('r', 'a1', v(1, 'a'))
    A2.recordPut('y', 'y1', v(2, 'a'))
    const D2 = h2.session('d', 'D')
    D2.recordGet('y', e('y', 'y1', v(2, 'a')))
    D2.recordGet('r', undefined)
    expect(kinds(checkHistory(h2, { conflicts: 'return-all' }))).toEqual(['WriteCOInitRead'])
  })
})

describe('checker: valid histories pass', () => {
  it('concurrent lww writes and monotonic reads', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('x', 'a1', v(1, 'a'))
    h.session('b', 'B').recordPut('x', 'b1', v(2, 'b'))
    const C = h.session('c', 'C')
    C.recordGet('x', e('x', 'a1', v(1, 'a')))
    C.recordGet('x', e('x', 'b1', v(2, 'b')))
    C.recordGet('x', e('x', 'b1', v(2, 'b')))
    C.recordGet('y', undefined)
    const r = checkHistory(h)
    expect(r.violations).toEqual([])
    expect(r.ok).toBe(true)
    expect(r.stats).toEqual({ events: 6, sessions: 3, writes: 2, reads: 4 })
  })

  it('an lww read may see its own older write lose to a concurrent newer one', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('x', 'a1', v(1, 'a'))
    h.session('b', 'B').recordPut('x', 'b1', v(5, 'b'))
    A.recordGet('x', e('x', 'b1', v(5, 'b')))
    expect(checkHistory(h).violations).toEqual([])
  })

  it('deletes: absent after a delete, and absent explained by a concurrent newer delete', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('x', 'a1', v(1, 'a'))
    A.recordDelete('x', v(2, 'a'))
    A.recordGet('x', undefined)
    A.recordPut('z', 'z1', v(3, 'a'))
    h.session('b', 'B').recordDelete('z', v(9, 'b'))
    A.recordGet('z', undefined)
    const B2 = h.session('b', 'B2')
    B2.recordGet('x', e('x', 'a1', v(1, 'a')))
    B2.recordGet('x', undefined)
    B2.recordPut('x', 'b1', v(10, 'b'))
    B2.recordGet('x', e('x', 'b1', v(10, 'b')))
    expect(checkHistory(h).violations).toEqual([])
  })

  it('return-all: siblings, a put superseding what was read, a put concurrent with a delete', () => {
    const h = createHistory()
    h.session('a', 'A').recordPut('r', 'a1', v(1, 'a'))
    h.session('b', 'B').recordPut('r', 'b1', v(1, 'b'))
    const C = h.session('c', 'C')
    C.recordGet('r', sibs('r', ['b1', v(1, 'b')], ['a1', v(1, 'a')]))
    C.recordPut('r', 'c1', v(2, 'c'))
    const D = h.session('d', 'D')
    D.recordGet('r', e('r', 'c1', v(2, 'c')))
    D.recordDelete('r', v(3, 'd')) // hides c1
    D.recordPut('z', 'z1', v(4, 'd'))
    const E = h.session('e', 'E')
    E.recordGet('r', sibs('r', ['b1', v(1, 'b')], ['a1', v(1, 'a')]))
    E.recordPut('r', 'e1', v(2, 'e')) // concurrent with D's delete: survives it
    const F = h.session('f', 'F')
    F.recordGet('z', e('z', 'z1', v(4, 'd')))
    F.recordGet('r', e('r', 'e1', v(2, 'e')))
    F.recordGetMany(['r', 'z', 'nope'], new Map([['r', e('r', 'e1', v(2, 'e'))], ['z', e('z', 'z1', v(4, 'd'))]]))
    const finalReads = new Map(['a', 'b', 'f'].map((s) => [s, new Map([['r', e('r', 'e1', v(2, 'e'))]])]))
    const r = checkHistory(h, { conflicts: { default: 'lww', prefixes: { r: 'return-all' } }, finalReads })
    expect(r.violations).toEqual([])
  })

  it('return-all: a put without reading does not supersede older siblings', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordPut('r', 'a1', v(1, 'a'))
    A.recordPut('y', 'y1', v(2, 'a'))
    const B = h.session('b', 'B')
    B.recordGet('y', e('y', 'y1', v(2, 'a')))
    B.recordPut('r', 'b1', v(3, 'b')) // never read r: a1 stays a sibling
    B.recordGet('r', sibs('r', ['b1', v(3, 'b')], ['a1', v(1, 'a')]))
    expect(checkHistory(h, { conflicts: 'return-all' }).violations).toEqual([])
  })

  it('transactions (one version for several keys) and session continuation at another site', () => {
    const h = createHistory()
    const A = h.session('a', 'A')
    A.recordWrite([{ key: 'x', value: 'x1' }, { key: 'y', value: 'y1' }, { key: 'w', delete: true }], v(3, 'a'))
    const B = h.session('b', 'B')
    B.recordGetMany(['x', 'y'], new Map([['x', e('x', 'x1', v(3, 'a'))], ['y', e('y', 'y1', v(3, 'a'))]]))
    const A2 = h.session('c', 'A') // A continued at c with its context
    A2.recordGet('x', e('x', 'x1', v(3, 'a')))
    expect(checkHistory(h).violations).toEqual([])
    A2.recordGet('y', undefined)
    expect(kinds(checkHistory(h))).toEqual(['WriteCOInitRead'])
  })

  it('values are compared structurally (objects with a unique w field, bytes, dates)', () => {
    const h = createHistory()
    const val = { w: 'A:1', n: [1, 2, { z: true }], b: new Uint8Array([1, 2]), d: new Date(5) }
    h.session('a', 'A').recordPut('x', val)
    h.session('b', 'B').recordGet('x', { key: 'x', value: { d: new Date(5), b: new Uint8Array([1, 2]), n: [1, 2, { z: true }], w: 'A:1' }, version: v(1, 'a') })
    expect(checkHistory(h).violations).toEqual([])
  })
})

// ---- generated histories ------------------------------------------------------------------------

const KEYS = ['a', 'b', 'c', 'r1', 'r2']
const modeOf = (k: string) => (k.startsWith('r') ? ('return-all' as const) : ('lww' as const))

const stepArb = fc.record({ op: fc.nat(9), s: fc.nat(), k: fc.nat(), x: fc.nat() })
const runArb = fc.record({
  replicas: fc.integer({ min: 1, max: 4 }),
  sessions: fc.integer({ min: 1, max: 6 }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 120 }),
})

type Run = { replicas: number; sessions: number; steps: Array<{ op: number; s: number; k: number; x: number }> }

function runModel(run: Run) {
  const ids = Array.from({ length: run.replicas }, (_, i) => `s${i}`)
  const m = createCausalModel({ replicas: ids, modeOf })
  const sessions = Array.from({ length: run.sessions }, (_, i) => m.session(i % run.replicas, `S${i}`))
  let n = 0
  for (const st of run.steps) {
    const s = sessions[st.s % sessions.length]!
    const key = KEYS[st.k % KEYS.length]!
    switch (st.op) {
      case 0:
      case 1:
      case 2:
        s.put(key, `${s.recorder.id}:${n++}`)
        break
      case 3:
        s.delete(key)
        break
      case 4:
      case 5:
        s.get(key)
        break
      case 6:
        s.getMany(KEYS.filter((_, i) => (st.x >> i) & 1))
        break
      default:
        m.deliverOne(st.s % run.replicas, (len) => st.x % len)
    }
  }
  return { m, sessions, ids, n }
}

function finalReadsOf(m: ReturnType<typeof createCausalModel>, ids: string[]) {
  m.deliverAll()
  return new Map(ids.map((id, i) => [id, new Map(KEYS.map((k) => [k, m.peek(i, k)] as const))]))
}

describe('checker: generated histories', () => {
  it('random causal histories (lww and return-all, partial replication) pass', () => {
    fc.assert(
      fc.property(runArb, (run) => {
        const { m, ids } = runModel(run)
        const r = checkHistory(m.history, { conflicts: modeOf, finalReads: finalReadsOf(m, ids), complete: true })
        expect(r.violations).toEqual([])
      }),
      { numRuns: 300 },
    )
  })

  it('a stale read after a causally newer write is detected', () => {
    fc.assert(
      fc.property(runArb, fc.nat(), fc.nat(), (run, si, ki) => {
        const { m, sessions } = runModel(run)
        const s = sessions[si % sessions.length]!
        const key = KEYS[ki % KEYS.length]!
        const v1 = s.put(key, 'old-value')
        s.put(key, 'new-value')
        s.recorder.recordGet(key, { key, value: 'old-value', version: v1 })
        const r = checkHistory(m.history, { conflicts: modeOf })
        expect(r.counts.WriteCORead).toBeGreaterThan(0)
      }),
      { numRuns: 200 },
    )
  })

  it('a dependency missing across sessions is detected', () => {
    fc.assert(
      fc.property(runArb, fc.nat(), fc.nat(), (run, si, sj) => {
        const { m, sessions } = runModel(run)
        const a = sessions[si % sessions.length]!
        const b = sessions[sj % sessions.length]!
        a.put('fresh', 'dep')
        const vy = a.put('flag', 'set')
        b.recorder.recordGet('flag', { key: 'flag', value: 'set', version: vy })
        b.recorder.recordGet('fresh', undefined)
        const r = checkHistory(m.history, { conflicts: modeOf })
        expect(r.counts.WriteCOInitRead).toBeGreaterThan(0)
      }),
      { numRuns: 200 },
    )
  })

  it('divergent final reads are detected', () => {
    fc.assert(
      fc.property(runArb.filter((r) => r.replicas > 1), fc.nat(), (run, ki) => {
        const { m, ids } = runModel(run)
        const key = KEYS[ki % KEYS.length]!
        const s = m.session(0, 'extra')
        s.put(key, 'only-at-0') // never delivered: replica 0 differs from the others
        const finalReads = new Map(ids.map((id, i) => [id, new Map([[key, m.peek(i, key)]])]))
        const r = checkHistory(m.history, { conflicts: modeOf, finalReads })
        expect(r.counts.Divergence).toBe(1)
      }),
      { numRuns: 100 },
    )
  })

  it('checks a 5,000-operation history quickly', () => {
    const random = createRandom(11)
    const int = (n: number) => Math.floor(random() * n)
    const steps = Array.from({ length: 7500 }, () => ({ op: int(10), s: int(1e6), k: int(1e6), x: int(1e6) }))
    const { m, ids } = runModel({ replicas: 4, sessions: 40, steps })
    const started = performance.now()
    const r = checkHistory(m.history, { conflicts: modeOf, finalReads: finalReadsOf(m, ids) })
    const elapsedMs = performance.now() - started
    expect(r.stats.events).toBeGreaterThan(4500)
    expect(r.violations).toEqual([])
    expect(elapsedMs).toBeLessThan(20_000) // loose: typically well under a second
  })
})
