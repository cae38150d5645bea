import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Prefix of every client secret this package generates. Secret scanners (GitHub push protection,
 * gitleaks, trufflehog) can match `m2m_cs_` followed by 43 base64url characters and a 6-character
 * checksum, so a leaked secret is found and can be revoked.
 */
export const SECRET_PREFIX = 'm2m_cs_';

const BODY_LENGTH = 43; // 32 random bytes in base64url, no padding
const CHECKSUM_LENGTH = 6;
const SECRET_PATTERN = /^m2m_cs_[A-Za-z0-9_-]{43}[0-9a-z]{6}$/;

function checksum(body: string): string {
  return crc32(body).toString(36).padStart(CHECKSUM_LENGTH, '0').slice(-CHECKSUM_LENGTH);
}

/**
 * Generates a new client secret: 256 random bits, the {@link SECRET_PREFIX} and a CRC-32 checksum
 * so that typos and scanner false positives are recognised without a database round trip.
 *
 * @returns The secret in plain text. Show it once; store only {@link hashSecret}'s result.
 */
export function generateClientSecret(): string {
  const body = randomBytes(32).toString('base64url');
  return `${SECRET_PREFIX}${body}${checksum(body)}`;
}

/**
 * True when `value` has the shape of a secret from {@link generateClientSecret}, checksum included.
 * Says nothing about whether any client holds it.
 *
 * @param value - A candidate secret.
 */
export function isWellFormedSecret(value: string): boolean {
  if (!SECRET_PATTERN.test(value)) return false;
  const body = value.slice(SECRET_PREFIX.length, SECRET_PREFIX.length + BODY_LENGTH);
  return checksum(body) === value.slice(-CHECKSUM_LENGTH);
}

/**
 * Hashes a secret for storage: SHA-256, hex encoded.
 *
 * A fast hash is deliberate. The secrets hold 256 random bits, so an offline search of the hash
 * space is infeasible whatever the hash costs, and a slow password hash (bcrypt, scrypt) would only
 * cap the token endpoint at a few hundred requests per second per core.
 *
 * @param secret - The plain secret.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A hash that no secret produces, compared against when a client is unknown so timing matches. */
export const DUMMY_SECRET_HASH = hashSecret(`${SECRET_PREFIX}no-such-secret`);
const DUMMY_SECRET_HASH_BYTES = Buffer.from(DUMMY_SECRET_HASH, 'hex');

/**
 * A stored hash decoded once, for {@link matchSecret}: a store that keeps hashes in memory decodes
 * them when it loads them, not on every authentication.
 *
 * @param hex - A SHA-256 hex hash from {@link hashSecret}.
 */
export function decodeSecretHash(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}

/**
 * Compares a presented secret with stored hashes in constant time with respect to their contents.
 * Every hash is compared, even after a match, so the time does not tell which one matched.
 *
 * @param secret - The secret the client presented.
 * @param hashes - Stored SHA-256 hashes (several during a rotation grace period), as hex or as
 *   bytes from {@link decodeSecretHash}.
 * @returns The index of the matching hash, or -1.
 */
export function matchSecret(secret: string, hashes: readonly (string | Uint8Array)[]): number {
  // The one-shot hash: createHash builds a Hash object and a stream around it for each call.
  const presented = hash('sha256', secret, 'buffer');
  let found = -1;
  const candidates = hashes.length === 0 ? [DUMMY_SECRET_HASH_BYTES] : hashes;
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[i] ?? '';
    const stored = typeof candidate === 'string' ? Buffer.from(candidate, 'hex') : candidate;
    const same = stored.length === presented.length && timingSafeEqual(stored, presented);
    if (same && hashes.length > 0 && found === -1) found = i;
  }
  return found;
}
