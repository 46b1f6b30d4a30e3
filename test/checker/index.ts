export { createHistory } from './history.js'
export { checkHistory, canonicalValue, compareVersions } from './check.js'
export { createCausalModel, type CausalModel, type CausalModelOptions } from './model.js'
export type * from './types.js'
