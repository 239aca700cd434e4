export { type Finding } from './findings';
export { removedButReferenced } from './removed-but-referenced';
