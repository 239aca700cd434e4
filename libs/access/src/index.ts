export { SCOPES, type Scope, grants, parseScopes } from './domain/scopes';
export { generateToken, hashToken, TOKEN_PREFIX } from './domain/token-secret';
export type { Actor, TokenActor } from './domain/actor';
export { AccessError } from './errors';
export { createToken, type CreateToken, type CreatedToken } from './commands/create-token/create-token';
export { revokeToken } from './commands/revoke-token/revoke-token';
export { recordAudit, type AuditEntry } from './commands/record-audit/record-audit';
export {
  ensureLocalToken,
  localTokenPath,
  LOCAL_BOOTSTRAP,
} from './commands/ensure-local-token/ensure-local-token';
export { authenticate } from './queries/authenticate/authenticate';
export { listTokens, type TokenView } from './queries/list-tokens/list-tokens';
export {
  listAudit,
  type AuditView,
  AUDIT_DEFAULT_LIMIT,
  AUDIT_MAX_LIMIT,
} from './queries/list-audit/list-audit';
