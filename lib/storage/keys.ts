import { generateSigningKey, isSigningAlgorithm, type SigningAlgorithm } from '../core/keys.js';
import type { KeyCipher } from '../core/key-encryption.js';
import type { KeyStore } from '../core/store.js';
import type { StoreContext } from './context.js';
import { keyFromRow, keyToRow, type KeyRow } from './rows.js';

/**
 * The signing-key part of the store. Private keys pass through `cipher` on their way in and out,
 * so with a keyEncryptionKey they are never written in plain text.
 *
 * Keys are not part of the client registry: their changes bump no revision (the issuer's key
 * cache has its own lifetime).
 */
export function createKeyStore(ctx: StoreContext, cipher: KeyCipher): KeyStore {
  const { knex, tables: t, clock } = ctx;
  return {
    async list() {
      const rows = await knex<KeyRow>(t.keys).whereNull('revoked_at').select('*');
      return rows.map((row) => keyFromRow(row, cipher));
    },

    async ensure(alg) {
      if (!isSigningAlgorithm(alg)) throw new TypeError('alg must be ES256, RS256 or PS256');
      // An active key is needed, not just any key: a key rotated in before the issuer's first
      // start is still pending and cannot sign yet.
      const now = clock();
      const active = await knex(t.keys).whereNull('revoked_at').andWhere('activates_at', '<=', now).first('kid');
      if (active) return;
      const key = await generateSigningKey(alg);
      // Two instances starting together may both insert a key. That is harmless: both are
      // published and every instance picks the same signing key from the same rows.
      await knex(t.keys).insert(keyToRow(key, now, now, cipher));
    },

    async rotate(rotateOptions = {}) {
      const alg: SigningAlgorithm = rotateOptions.alg ?? 'ES256';
      if (!isSigningAlgorithm(alg)) throw new TypeError('alg must be ES256, RS256 or PS256');
      const activateAfter = rotateOptions.activateAfter ?? 600;
      if (typeof activateAfter !== 'number' || !Number.isFinite(activateAfter) || activateAfter < 0) {
        throw new TypeError('activateAfter must be a number of seconds >= 0');
      }
      const key = await generateSigningKey(alg);
      const now = clock();
      const row = keyToRow(key, now, now + Math.round(activateAfter * 1000), cipher);
      await knex(t.keys).insert(row);
      return keyFromRow(row, cipher);
    },

    async revoke(kid) {
      if (typeof kid !== 'string' || kid.length > 64) return false;
      const count = await knex(t.keys).where({ kid }).whereNull('revoked_at').update({ revoked_at: clock() });
      return count > 0;
    },
  };
}
