import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Bytes of the random IV of each sealed value (96 bits, as NIST SP 800-38D recommends for GCM). */
export const IV_BYTES = 12;
/** Bytes of the authentication tag: the full 128 bits, never a truncated tag. */
export const TAG_BYTES = 16;

/** A value sealed with AES-256-GCM: its IV, ciphertext and tag. */
export interface Sealed {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/**
 * Seals `plaintext` with AES-256-GCM under `key` (32 bytes), a fresh random IV, and `aad` as
 * additional data that must be presented again to open it (the row or cache key the value
 * belongs to, so that a value copied elsewhere does not open).
 */
export function seal(key: Buffer, plaintext: string, aad: string): Sealed {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/**
 * Opens a value made by {@link seal}: the UTF-8 plaintext.
 *
 * @throws Error when the IV or tag has the wrong length (GCM would accept a truncated tag, which
 *   whoever can write the stored value could forge), or the key, data or `aad` do not match.
 */
export function open(key: Buffer, sealed: Sealed, aad: string): string {
  if (sealed.iv.length !== IV_BYTES || sealed.tag.length !== TAG_BYTES) throw new Error('the sealed value is malformed');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(sealed.tag);
  return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
}
