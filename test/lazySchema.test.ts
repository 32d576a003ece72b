/**
 * Schemas built on first use (util/lazySchema.ts): a stand-in behaves as its schema, builds it
 * once, and `built` gives the schema itself where identity matters.
 */
import test from 'ava';
import { z } from 'zod';
import { built, lazySchema } from '../src/util/lazySchema.js';

test('a lazy schema is built at first use, once, and behaves as the schema', (t) => {
  let builds = 0;
  const settings = lazySchema(() => {
    builds++;
    return z.strictObject({ n: z.int().min(1).default(3).describe('a count') });
  });
  t.is(builds, 0, 'nothing built yet');
  t.deepEqual(settings.parse({}), { n: 3 });
  t.false(settings.safeParse({ n: 0 }).success);
  t.is(builds, 1);
  t.true(settings instanceof z.ZodObject);
  t.true('_zod' in settings);
  t.deepEqual(Object.keys(settings.shape), ['n']);
  const optional = settings.optional();
  t.is(optional.parse(undefined), undefined);
  t.is(builds, 1, 'built once');
});

test('built gives the schema itself: what registries and JSON Schema key by', (t) => {
  const inner = lazySchema(() => z.string().describe('a name'));
  const outer = lazySchema(() => z.strictObject({ name: built(inner) }));
  t.is(built(inner), built(inner));
  t.not(built(inner), inner as unknown);
  t.is(built(42), 42, 'anything else is itself');
  const json = z.toJSONSchema(built(outer)) as unknown as { properties: { name: { description?: string } } };
  t.is(json.properties.name.description, 'a name');
});
