import { describe, expect, it } from 'vitest'
import { CausewayError, defineModel, openDatabase, type ModelDef } from '../src/index.js'
import { encodeNumber, encodeTerm } from '../src/encode.js'
import { compareStrings } from '../src/eval.js'

function code(f: () => unknown): string | undefined {
  try {
    f()
    return undefined
  } catch (e) {
    if (e instanceof CausewayError) return e.code
    throw e
  }
}

describe('defineModel', () => {
  const base = { table: 't', primaryKey: 'id', columns: { id: 'string', a: 'int?', j: 'json?' } } as const
  it.each<[string, Partial<ModelDef> & Record<string, unknown>]>([
    ['bad table name', { table: 'Bad Name' }],
    ['primary key not a column', { primaryKey: 'nope' }],
    ['nullable primary key', { primaryKey: 'a' }],
    ['unknown column type', { columns: { id: 'string', a: 'varchar' } as never }],
    ['index on an unknown column', { indexes: [['zz']] }],
    ['index on a json column', { indexes: [['j']] }],
    ['empty index', { indexes: [[]] }],
    ['duplicate index', { indexes: [['a'], ['a']] }],
    ['softDelete column missing', { softDelete: true }],
    ['sequence on an int key', { columns: { id: 'int' }, generate: 'sequence' }],
    ['relation without model thunk', { relations: { r: { model: 1, localKey: 'id', foreignKey: 'x', kind: 'many' } as never } }],
    ['relation shadowing a column', { relations: { a: { model: () => undefined as never, localKey: 'id', foreignKey: 'x', kind: 'many' } } }],
  ])('rejects %s with INVALID_MODEL', (_name, over) => {
    expect(code(() => defineModel({ ...base, ...over } as ModelDef))).toBe('INVALID_MODEL')
  })

  it('checks relations at openDatabase: target registered and foreign key indexed', async () => {
    const Child = defineModel({ table: 'child', primaryKey: 'id', columns: { id: 'string', parent: 'string' } })
    const Parent = defineModel({
      table: 'parent',
      primaryKey: 'id',
      columns: { id: 'string' },
      relations: { kids: { model: () => Child, localKey: 'id', foreignKey: 'parent', kind: 'many' } },
    })
    await expect(openDatabase({ backend: 'sqlite', models: [Parent] })).rejects.toMatchObject({ code: 'INVALID_MODEL' })
    await expect(openDatabase({ backend: 'sqlite', models: [Parent, Child] })).rejects.toMatchObject({ code: 'INVALID_MODEL', message: /indexed/ })
    await expect(openDatabase({ backend: 'sqlite', models: [Child, Child] })).rejects.toMatchObject({ code: 'INVALID_MODEL' })
    await expect(openDatabase({ backend: 'nope' } as never)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })
})

describe('index term encoding', () => {
  it('orders numbers like numbers, negatives and fractions included', () => {
    const xs = [-1e300, -5.5, -1, -Number.MIN_VALUE, 0, Number.MIN_VALUE, 0.5, 1, 2, 1e15, 1e300]
    const enc = xs.map(encodeNumber)
    expect([...enc].sort()).toEqual(enc)
    expect(encodeNumber(-0)).toBe(encodeNumber(0))
  })
  it('orders compound terms part by part: null first, shorter strings first, escapes kept in order', () => {
    const terms = [
      [null, 'b'],
      ['', null],
      ['a', null],
      ['a', 'z'],
      ['a\u0000', null],
      ['a\u0001', 'x'],
      ['a\u0002', 'x'],
      ['ab', null],
      ['b', null],
    ].map((t) => encodeTerm(t))
    expect([...terms].sort(compareStrings)).toEqual(terms)
    for (const t of terms) expect(t.includes('\u0000')).toBe(false)
  })
})
