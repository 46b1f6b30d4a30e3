export { CausewayLevel } from './level.js'
export type { CausewayLevelOptions } from './level.js'
