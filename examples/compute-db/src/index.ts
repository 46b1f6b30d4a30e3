export * from './models.js'
export { BOOT_SEQUENCE, ComputeDb } from './db.js'
export type { ComputeDbOptions, InstanceCreate, InstanceFilters, InstanceFull, InstanceRow, KV, ListOptions, SortKey } from './db.js'
export { createInstances, type CreateInstancesOptions } from './workload.js'
