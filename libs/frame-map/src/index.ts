export { mapLocals, type LocalVar, type LocalMapping, type LocalOverride } from './local-mapping';
