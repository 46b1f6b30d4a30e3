/**
 * The compute service's schema (a subset of Nova's), declared once for every backend.
 *
 * Differences from Nova's SQL schema, all for multi-site operation without coordination:
 * - ids of child rows are per-site sequences (`<site>-<counter>`), not AUTOINCREMENT;
 * - the info cache is keyed by instance_uuid (Nova: a unique index on it), which is unique by
 *   construction instead of by a cross-site constraint;
 * - quota usages are keyed by `<project>/<resource>` and homed at the project's home site.
 */
import { defineModel } from '@causeway/orm'

export const Instance = defineModel({
  table: 'instances',
  primaryKey: 'uuid',
  columns: {
    uuid: 'string',
    project_id: 'string',
    user_id: 'string',
    display_name: 'string',
    host: 'string?',
    node: 'string?',
    vm_state: 'string',
    task_state: 'string?',
    power_state: 'int',
    memory_mb: 'int',
    vcpus: 'int',
    root_gb: 'int',
    image_ref: 'string',
    launched_at: 'datetime?',
    created_at: 'datetime',
    updated_at: 'datetime?',
    deleted: 'int',
    deleted_at: 'datetime?',
  },
  indexes: [
    ['project_id', 'created_at'],
    ['created_at'],
    ['host', 'node'],
    ['task_state'],
    ['project_id', 'vm_state'],
  ],
  softDelete: true,
  relations: {
    metadata: { model: () => InstanceMetadata, localKey: 'uuid', foreignKey: 'instance_uuid', kind: 'many' },
    system_metadata: { model: () => InstanceSystemMetadata, localKey: 'uuid', foreignKey: 'instance_uuid', kind: 'many' },
    info_cache: { model: () => InstanceInfoCache, localKey: 'uuid', foreignKey: 'instance_uuid', kind: 'one' },
  },
})

export const InstanceMetadata = defineModel({
  table: 'instance_metadata',
  primaryKey: 'id',
  generate: 'sequence',
  columns: { id: 'string', instance_uuid: 'string', key: 'string', value: 'string?', deleted: 'int', deleted_at: 'datetime?' },
  indexes: [['instance_uuid', 'key']],
  softDelete: true,
})

export const InstanceSystemMetadata = defineModel({
  table: 'instance_system_metadata',
  primaryKey: 'id',
  generate: 'sequence',
  columns: { id: 'string', instance_uuid: 'string', key: 'string', value: 'string?', deleted: 'int', deleted_at: 'datetime?' },
  indexes: [['instance_uuid', 'key']],
  softDelete: true,
})

export const InstanceInfoCache = defineModel({
  table: 'instance_info_caches',
  primaryKey: 'instance_uuid',
  columns: { instance_uuid: 'string', network_info: 'json?', updated_at: 'datetime?', deleted: 'int', deleted_at: 'datetime?' },
  softDelete: true,
})

export const InstanceAction = defineModel({
  table: 'instance_actions',
  primaryKey: 'id',
  generate: 'sequence',
  columns: {
    id: 'string',
    action: 'string',
    instance_uuid: 'string',
    request_id: 'string',
    user_id: 'string',
    project_id: 'string',
    start_time: 'datetime',
    finish_time: 'datetime?',
    message: 'string?',
  },
  indexes: [['instance_uuid', 'start_time'], ['request_id']],
  relations: {
    events: { model: () => InstanceActionEvent, localKey: 'id', foreignKey: 'action_id', kind: 'many' },
  },
})

export const InstanceActionEvent = defineModel({
  table: 'instance_actions_events',
  primaryKey: 'id',
  generate: 'sequence',
  columns: {
    id: 'string',
    action_id: 'string',
    event: 'string',
    start_time: 'datetime',
    finish_time: 'datetime?',
    result: 'string?',
    host: 'string?',
  },
  indexes: [['action_id', 'event']],
})

export const QuotaUsage = defineModel({
  table: 'quota_usages',
  primaryKey: 'id',
  columns: { id: 'string', project_id: 'string', resource: 'string', in_use: 'int', updated_at: 'datetime?' },
  indexes: [['project_id']],
})

export const computeModels = [
  Instance,
  InstanceMetadata,
  InstanceSystemMetadata,
  InstanceInfoCache,
  InstanceAction,
  InstanceActionEvent,
  QuotaUsage,
]
