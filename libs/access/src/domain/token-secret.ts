import { createHash, randomBytes } from 'node:crypto';

/** Prefix of every token, so a token in a log or a paste is recognizable (and greppable). */
export const TOKEN_PREFIX = 'dsu_';

/** A new token: `dsu_` + 256 random bits (base64url), and its public id. */
export function generateToken(): { id: string; token: string } {
  return {
    id: `tok_${randomBytes(8).toString('hex')}`,
    token: TOKEN_PREFIX + randomBytes(32).toString('base64url'),
  };
}

/**
 * What the database stores instead of the token. 256 random bits cannot be guessed, so one
 * SHA-256 (no salt, no slow KDF) is enough and lets every request look its token up by hash.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
