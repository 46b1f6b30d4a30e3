export * from './types.js'
export * from './errors.js'
export type * from './network.js'
export type * from './api.js'
