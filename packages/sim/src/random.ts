/**
 * Seeded PRNG (mulberry32): deterministic, fast, good enough for simulated jitter and test
 * generators. Library code never calls Math.random(), so a run is reproducible from its seed.
 */
export type RandomFn = () => number

/** A function returning floats in [0, 1), fully determined by `seed` (any finite number). */
export function createRandom(seed: number): RandomFn {
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new TypeError('seed must be a finite number')
  let state = Math.trunc(seed) >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Integer in [0, n) from a RandomFn. */
export function randomInt(random: RandomFn, n: number): number {
  return Math.floor(random() * n)
}
