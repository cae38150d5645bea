import { hkdfSync } from 'node:crypto';
import { KeyDecryptionError } from '../errors.js';
import { InvalidOptionError } from './options.js';
import { IV_BYTES, open, seal, TAG_BYTES } from './seal.js';

/** What an encrypted private key starts with in the database. */
const PREFIX = 'm2m-enc:v1:';

/** Whether a stored private key is encrypted (sealed by a {@link KeyCipher} with a secret). */
export function isSealed(stored: string): boolean {
  return stored.startsWith(PREFIX);
}

/** Encrypts and decrypts signing keys at rest, bound to their kid. */
export interface KeyCipher {
  /** True when a secret is set: `seal` encrypts. False: it stores keys in plain text. */
  readonly sealing: boolean;
  /** `pem` encrypted for the row of `kid`. */
  seal(pem: string, kid: string): string;
  /** The PEM of a stored value: decrypted when sealed, as it is when stored in plain text. */
  open(stored: string, kid: string): string;
}

/**
 * Builds the cipher for private signing keys at rest: AES-256-GCM under a key derived with
 * HKDF-SHA256 from `secret`, a fresh 96-bit IV per key, the kid as additional data (a value
 * copied into another key's row does not decrypt). Stored as `m2m-enc:v1:` and base64url of
 * IV, tag and ciphertext.
 *
 * @param secret - At least 32 characters (`openssl rand -base64 32` gives 44), or undefined for
 *   keys stored in plain text.
 * @throws {@link InvalidOptionError} (a TypeError) for a secret that is not a string of at least 32 characters.
 */
export function keyCipher(secret: string | undefined): KeyCipher {
  if (secret !== undefined && (typeof secret !== 'string' || secret.length < 32)) {
    throw new InvalidOptionError('keyEncryptionKey', 'keyEncryptionKey must be a string of at least 32 characters (for example: openssl rand -base64 32)');
  }
  const key = secret === undefined
    ? undefined
    : Buffer.from(hkdfSync('sha256', secret, 'express-m2m signing keys', 'aes-256-gcm v1', 32));
  return {
    sealing: key !== undefined,
    seal(pem, kid) {
      if (key === undefined) return pem;
      const { iv, tag, ciphertext } = seal(key, pem, kid);
      return `${PREFIX}${Buffer.concat([iv, tag, ciphertext]).toString('base64url')}`;
    },
    open(stored, kid) {
      if (!stored.startsWith(PREFIX)) return stored;
      if (key === undefined) throw new KeyDecryptionError(`signing key ${kid} is stored encrypted: set keyEncryptionKey to use it`, kid);
      const bytes = Buffer.from(stored.slice(PREFIX.length), 'base64url');
      try {
        if (bytes.length <= IV_BYTES + TAG_BYTES) throw new Error('too short');
        const iv = bytes.subarray(0, IV_BYTES);
        const tag = bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
        return open(key, { iv, tag, ciphertext: bytes.subarray(IV_BYTES + TAG_BYTES) }, kid);
      } catch (err) {
        throw new KeyDecryptionError(`signing key ${kid} could not be decrypted: keyEncryptionKey is not the one it was stored with`, kid, { cause: err });
      }
    },
  };
}
