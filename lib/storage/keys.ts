import { generateSigningKey, isSigningAlgorithm, type SigningAlgorithm } from '../core/keys.js';
import { isSealed, type KeyCipher } from '../core/key-encryption.js';
import { InvalidOptionError } from '../core/options.js';
import { PlaintextKeyError } from '../errors.js';
import { DEFAULT_KEY_RETENTION } from '../core/key-set.js';
import type { KeyStore } from '../core/store.js';
import type { StoreContext } from './context.js';
import { inWriteTransaction } from './registry.js';
import { keyFromRow, keyToRow, type KeyRow } from './rows.js';

// The retention column is a 32-bit integer on every database.
const MAX_RETENTION = 2_147_483_647;

/** Inserts a key row with its `key.created` audit entry. */
function insertKey(ctx: StoreContext, row: KeyRow): Promise<void> {
  return inWriteTransaction(ctx.knex, async (trx) => {
    await trx(ctx.tables.keys).insert(row);
    await ctx.audit.record(trx, {
      action: 'key.created', clientId: null, target: row.kid,
      details: { alg: row.alg, activatesAt: new Date(Number(row.activates_at)), retention: Number(row.retention) },
    });
  });
}

/**
 * Refuses to store a private key in plain text when other live keys are stored encrypted: a
 * `keys rotate` run without M2M_KEY_ENCRYPTION_KEY would otherwise undo the encryption silently.
 */
async function refusePlaintextBesideSealed(ctx: StoreContext, cipher: KeyCipher, allowPlaintext: boolean | undefined): Promise<void> {
  if (cipher.sealing || allowPlaintext === true) return;
  const live = await ctx.knex<KeyRow>(ctx.tables.keys).whereNull('revoked_at').select('private_key');
  if (live.some((row) => isSealed(row.private_key))) {
    throw new PlaintextKeyError('the other signing keys are stored encrypted: give this store the keyEncryptionKey '
      + '(CLI: M2M_KEY_ENCRYPTION_KEY), or allow a plain-text key on purpose (allowPlaintext, CLI: --allow-plaintext)');
  }
}

function checkRetention(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_RETENTION) {
    throw new TypeError(`retention must be a number of seconds from 0 to ${MAX_RETENTION}`);
  }
  // Up, not to the nearest: a key published a fraction of a second longer harms nobody.
  return Math.ceil(value);
}

/**
 * The signing-key part of the store. Private keys pass through `cipher` on their way in and out,
 * so with a keyEncryptionKey they are never written in plain text.
 *
 * Keys are not part of the client registry: their changes bump no revision (the issuer's key
 * cache has its own lifetime).
 */
export function createKeyStore(ctx: StoreContext, cipher: KeyCipher): KeyStore & { seal(): Promise<number> } {
  const { knex, tables: t, clock } = ctx;
  return {
    async list() {
      const rows = await knex<KeyRow>(t.keys).whereNull('revoked_at').select('*');
      return rows.map((row) => keyFromRow(row, cipher));
    },

    async ensure(alg, ensureOptions = {}) {
      if (!isSigningAlgorithm(alg)) throw new TypeError('alg must be ES256, RS256 or PS256');
      const retention = ensureOptions.retention === undefined ? undefined : checkRetention(ensureOptions.retention);
      const now = clock();
      const live = await knex<KeyRow>(t.keys).whereNull('revoked_at').select('kid', 'activates_at');
      const activated = live.map((row) => Number(row.activates_at)).filter((at) => at <= now);
      const activeSince = activated.length === 0 ? Number.NEGATIVE_INFINITY : Math.max(...activated);
      if (retention !== undefined) {
        // The caller signs with the active key and, later, with the pending ones: each must stay
        // published as long as the caller's tokens live. The condition is repeated in the update so
        // that two instances with different settings can only raise a value, never lower it.
        const signWith = live.filter((row) => Number(row.activates_at) >= activeSince).map((row) => row.kid);
        if (signWith.length > 0) {
          await knex(t.keys).whereIn('kid', signWith)
            .andWhere((q) => q.whereNull('retention').orWhere('retention', '<', retention))
            .update({ retention });
        }
      }
      // An active key is needed, not just any key: a key rotated in before the issuer's first
      // start is still pending and cannot sign yet.
      if (activated.length > 0) return;
      await refusePlaintextBesideSealed(ctx, cipher, ensureOptions.allowPlaintext);
      const key = await generateSigningKey(alg);
      // Two instances starting together may both insert a key. That is harmless: both are
      // published and every instance picks the same signing key from the same rows.
      await insertKey(ctx, keyToRow(key, { createdAt: now, activatesAt: now, retention: retention ?? DEFAULT_KEY_RETENTION }, cipher));
    },

    async rotate(rotateOptions = {}) {
      const alg: SigningAlgorithm = rotateOptions.alg ?? 'ES256';
      if (!isSigningAlgorithm(alg)) throw new TypeError('alg must be ES256, RS256 or PS256');
      const activateAfter = rotateOptions.activateAfter ?? 600;
      if (typeof activateAfter !== 'number' || !Number.isFinite(activateAfter) || activateAfter < 0) {
        throw new TypeError('activateAfter must be a number of seconds >= 0');
      }
      let retention = rotateOptions.retention === undefined ? undefined : checkRetention(rotateOptions.retention);
      if (retention === undefined) {
        // A key rotated in from the CLI signs for the same issuer as the key it follows, which
        // recorded its retention with ensure().
        const newest = await knex<KeyRow>(t.keys).whereNull('revoked_at')
          .orderBy([{ column: 'activates_at', order: 'desc' }, { column: 'created_at', order: 'desc' }]).first('retention');
        retention = newest === undefined || newest.retention === null ? DEFAULT_KEY_RETENTION : Number(newest.retention);
      }
      await refusePlaintextBesideSealed(ctx, cipher, rotateOptions.allowPlaintext);
      const key = await generateSigningKey(alg);
      const now = clock();
      const row = keyToRow(key, { createdAt: now, activatesAt: now + Math.round(activateAfter * 1000), retention }, cipher);
      await insertKey(ctx, row);
      return keyFromRow(row, cipher);
    },

    async seal() {
      if (!cipher.sealing) throw new InvalidOptionError('keyEncryptionKey', 'sealing keys needs the store\'s keyEncryptionKey');
      const rows = await knex<KeyRow>(t.keys).whereNull('revoked_at').select('kid', 'private_key');
      let sealed = 0;
      for (const row of rows) {
        if (isSealed(row.private_key)) continue;
        // Only if still plain text: two sealers at once seal each key once.
        sealed += await inWriteTransaction(knex, async (trx) => {
          const count = await trx(t.keys).where({ kid: row.kid, private_key: row.private_key })
            .update({ private_key: cipher.seal(row.private_key, row.kid) });
          if (count > 0) await ctx.audit.record(trx, { action: 'key.sealed', clientId: null, target: row.kid, details: {} });
          return count;
        });
      }
      return sealed;
    },

    async revoke(kid) {
      if (typeof kid !== 'string' || kid.length > 64) return false;
      return inWriteTransaction(knex, async (trx) => {
        const count = await trx(t.keys).where({ kid }).whereNull('revoked_at').update({ revoked_at: clock() });
        if (count > 0) await ctx.audit.record(trx, { action: 'key.revoked', clientId: null, target: kid, details: {} });
        return count > 0;
      });
    },
  };
}
