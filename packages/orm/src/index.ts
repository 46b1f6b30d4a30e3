export { defineModel } from './model.js'
export type {
  AnyModel,
  BaseType,
  ColumnInfo,
  ColumnSpec,
  ColumnsSpec,
  IndexInfo,
  IndexSpec,
  InsertOfModel,
  JsonValue,
  Model,
  ModelDef,
  ModelInfo,
  RelationDef,
  RelationName,
  RowOf,
  RowOfModel,
  SoftDeleteInfo,
  WithRelations,
} from './model.js'
export { openDatabase } from './database.js'
export type {
  Database,
  FindOptions,
  InsertOptions,
  OpenDatabaseOptions,
  OrderBy,
  Repository,
  Transaction,
  UpdateOptions,
  Where,
} from './database.js'
export type { Clock } from './builder.js'
export { ormConflicts, rowMerge } from './merge.js'
export type * from './nodes.js'
export { compile as compileSqlite } from './sqlite.js'
export { CausewayError, isCausewayError } from '@causeway/core'
