export { classifyInvocation, type CompilerInvocation, type InvocationKind } from './compiler-invocation';
