// Every fixture program, built with plain `cc` (or $DSU_E2E_CC), behaves as its table says.
import { fixtureCompiler } from './support/fixtures';
import { fixtureBehaviourSuite } from './support/behaviour-suite';

fixtureBehaviourSuite('the native compiler', fixtureCompiler());
