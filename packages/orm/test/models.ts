import { defineModel } from '../src/index.js'

export const Item = defineModel({
  table: 'items',
  primaryKey: 'id',
  columns: {
    id: 'string',
    owner: 'string',
    rank: 'int?',
    score: 'float',
    label: 'string?',
    active: 'bool',
    at: 'datetime',
    data: 'json?',
    deleted: 'int',
    deleted_at: 'datetime?',
  },
  indexes: [['owner'], ['owner', 'rank'], ['rank'], ['at'], ['label']],
  softDelete: true,
  relations: {
    tags: { model: () => Tag, localKey: 'id', foreignKey: 'item_id', kind: 'many' },
    ownerRow: { model: () => Owner, localKey: 'owner', foreignKey: 'name', kind: 'one' },
  },
})

export const Tag = defineModel({
  table: 'tags',
  primaryKey: 'id',
  columns: { id: 'string', item_id: 'string', name: 'string' },
  indexes: [['item_id']],
  generate: 'sequence',
})

export const Owner = defineModel({
  table: 'owners',
  primaryKey: 'name',
  columns: { name: 'string', region: 'string' },
})

export const Counter = defineModel({
  table: 'counters',
  primaryKey: 'id',
  columns: { id: 'int', n: 'int', note: 'text?' },
  indexes: [['n']],
})

export const models = [Item, Tag, Owner, Counter]

export const T0 = Date.UTC(2026, 0, 1)

export function item(id: string, over: Partial<Record<string, unknown>> = {}) {
  return {
    id,
    owner: 'alice',
    rank: 1,
    score: 0.5,
    label: null,
    active: true,
    at: new Date(T0),
    data: null,
    ...over,
  } as {
    id: string
    owner: string
    rank: number | null
    score: number
    label: string | null
    active: boolean
    at: Date
    data: null
  }
}
