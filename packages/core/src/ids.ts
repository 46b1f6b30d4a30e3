/**
 * Identifier patterns shared by every package (sites, peers, configs). The decoders in protocol.ts
 * and context.ts keep their own copy on purpose: they are hardened separately and stay self-contained.
 */

/** A site id: lower-case letters, digits, '_' and '-', starting with a letter or digit, 1..63 chars. */
export const SITE_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/

export function isSiteId(x: unknown): x is string {
  return typeof x === 'string' && SITE_ID_RE.test(x)
}

/** An index name (secondary indexes). */
export const INDEX_NAME_RE = /^[a-z0-9_-]{1,64}$/
