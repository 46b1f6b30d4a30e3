import type { ModelInfo } from './model.js'
import type { CanonRow, StatementNode } from './nodes.js'

/** What a backend executes statements with: the database itself or an open transaction. */
export interface Executor {
  execute(node: StatementNode): Promise<CanonRow[] | number>
  /** The home site of a row (SQLite: the database's own site id); undefined when there is no such row. */
  homeSite(table: string, pk: string | number): Promise<string | undefined>
}

export interface Backend extends Executor {
  readonly kind: 'sqlite' | 'causeway'
  readonly siteId: string
  /** Run fn in a transaction: all of its writes or none (and, on Causeway, visible together at every site). */
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export type BackendFactory = (models: readonly ModelInfo[]) => Promise<Backend>
