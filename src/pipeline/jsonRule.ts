/**
 * A refinement of a zod schema restated as a JSON Schema if/then(/else) rule, for `.meta()`: the
 * generated schema for editors (jsonSchema.ts) carries it, while zod keeps checking the
 * refinement itself. Built from entries because a literal object with a `then` key is taken for
 * a promise by `await` (and by the linter).
 */
export function jsonIf(condition: object, then: object, otherwise?: object): Record<string, unknown> {
  return Object.fromEntries([['if', condition], ['then', then], ...(otherwise ? [['else', otherwise]] : [])]);
}
