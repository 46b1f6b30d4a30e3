/**
 * Causal-consistency checker for multi-site tests. Record each session's operations with
 * createHistory().session(site, sessionId).recordPut/recordGet/..., then checkHistory(history,
 * { finalReads, conflicts, complete }) -> { ok, violations, counts, stats }. Semantics: see check.ts.
 * createCausalModel is a reference causal+ store (random valid histories for the checker's tests).
 */
export { createHistory } from './history.js'
export { checkHistory, canonicalValue, compareVersions } from './check.js'
export { createCausalModel, type CausalModel, type CausalModelOptions } from './model.js'
export type * from './types.js'
