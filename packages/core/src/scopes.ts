import { CausewayError } from './errors.js'
import { isSiteId } from './ids.js'

/**
 * Replication scopes (openSite's `scopes`): a key belongs to the scope of its longest matching
 * prefix and lives only at that scope's member sites; a key under no prefix lives everywhere.
 */
export class Scopes {
  /** [prefix, members sorted], longest prefix first. */
  readonly rules: ReadonlyArray<readonly [string, readonly string[]]>

  constructor(rules: Array<[string, string[]]>) {
    this.rules = rules.map(([p, m]) => [p, [...m].sort()] as const).sort((a, b) => b[0].length - a[0].length || (a[0] < b[0] ? -1 : 1))
  }

  get empty(): boolean {
    return this.rules.length === 0
  }

  /** The members of the key's scope, or undefined when the key is unscoped (every site holds it). */
  membersOf(key: string): readonly string[] | undefined {
    for (const [p, m] of this.rules) if (key.startsWith(p)) return m
    return undefined
  }

  /** Does `site` hold `key`? */
  holds(site: string, key: string): boolean {
    const m = this.membersOf(key)
    return m === undefined || m.includes(site)
  }

  /**
   * The sites that hold every key of one write (undefined: all sites). A write's keys must share
   * one member set (see docs/consistency.md, "Scopes"), so this is the members of its first key.
   */
  holdersOf(keys: readonly string[]): readonly string[] | undefined {
    return keys.length === 0 ? undefined : this.membersOf(keys[0]!)
  }

  /**
   * Throws OUT_OF_SCOPE (with `sites`) when `site` does not hold one of the keys, and
   * INVALID_ARGUMENT when the keys of one write fall in scopes with different members.
   */
  checkWrite(site: string, keys: readonly string[]): void {
    if (this.empty) return
    let first: readonly string[] | undefined | null = null
    for (const k of keys) {
      const m = this.membersOf(k)
      if (m !== undefined && !m.includes(site)) throw outOfScope(site, k, m)
      if (first === null) first = m
      else if (!sameMembers(first, m)) {
        throw new CausewayError('INVALID_ARGUMENT', `one write mixes keys of different scopes ('${keys[0]}' and '${k}'): its ops must be held by the same sites`)
      }
    }
  }

  /** Throws OUT_OF_SCOPE when `site` does not hold one of the keys (local reads). */
  checkRead(site: string, keys: Iterable<string>): void {
    if (this.empty) return
    for (const k of keys) {
      const m = this.membersOf(k)
      if (m !== undefined && !m.includes(site)) throw outOfScope(site, k, m)
    }
  }

  /** A canonical description, for configuration agreement. */
  describe(): string {
    return JSON.stringify([...this.rules].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
  }
}

function sameMembers(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.length === b.length && a.every((x, i) => x === b[i])
}

export function outOfScope(site: string, key: string, members: readonly string[]): CausewayError {
  return new CausewayError('OUT_OF_SCOPE', `key '${key}' is held by sites ${members.join(', ')}, not by ${site}`, { details: { sites: [...members] } })
}

export const MAX_SCOPES = 10_000
export const MAX_SCOPE_MEMBERS = 10_000

/** Validate openSite's `scopes`: prefix -> non-empty array of distinct site ids. */
export function validateScopes(opt: unknown): Scopes {
  if (opt === undefined) return new Scopes([])
  const bad = (m: string): never => {
    throw new CausewayError('INVALID_OPTIONS', m)
  }
  if (typeof opt !== 'object' || opt === null || Array.isArray(opt)) return bad('scopes must be an object of key prefix -> array of site ids')
  const entries = Object.entries(opt as Record<string, unknown>)
  if (entries.length > MAX_SCOPES) bad(`at most ${MAX_SCOPES} scopes`)
  const rules: Array<[string, string[]]> = []
  for (const [p, m] of entries) {
    if (p.length === 0) bad('a scope prefix must not be empty (unscoped keys already live everywhere)')
    if (!Array.isArray(m) || m.length === 0 || m.length > MAX_SCOPE_MEMBERS) bad(`scopes['${p}'] must be a non-empty array of site ids`)
    const seen = new Set<string>()
    for (const s of m as unknown[]) {
      if (!isSiteId(s)) bad(`scopes['${p}'] holds an invalid site id ${JSON.stringify(s)}`)
      if (seen.has(s as string)) bad(`scopes['${p}'] names site '${String(s)}' twice`)
      seen.add(s as string)
    }
    rules.push([p, [...(m as string[])]])
  }
  return new Scopes(rules)
}
