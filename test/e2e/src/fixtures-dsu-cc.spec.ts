// The same behaviour suite with every fixture built by dsu-cc: instrumentation (slots, stubs,
// promoted statics, wrapped blocking calls, the runtime's control thread) changes no reply.
import { readFileSync } from 'node:fs';
import { dsuCcPath } from '@dsu/instrument';
import { fixtureBehaviourSuite } from './support/behaviour-suite';

fixtureBehaviourSuite('dsu-cc', dsuCcPath(), (b) => {
  // Really instrumented: the link step wrote the program model, with every function updatable.
  const model = JSON.parse(readFileSync(`${b.binary}.dsu.json`, 'utf8'));
  const planned = model.instrumentation.units.flatMap((u: { plan: { functions: unknown[] } }) => u.plan.functions);
  expect(Object.keys(model.functions).length).toBeGreaterThan(5);
  expect(planned.length).toBe(Object.keys(model.functions).length);
  expect(model.buildId).toMatch(/^[0-9a-f]{32}$/);
});
