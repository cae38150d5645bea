import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { isClientId } from '../core/client.js';
import {
  generateClientSecret, hashSecret, isWellFormedSecret, matchSecret, DUMMY_SECRET_HASH, SECRET_PREFIX,
} from '../core/secrets.js';
import type { ClientStore, IssuedSecret } from '../core/store.js';
import { ClientAuthMethodError } from '../errors.js';
import { requireClient, type StoreContext } from './context.js';
import type { TableNames } from './migrations.js';
import type { CredentialLookup } from './registry.js';
import { secretFromRow, type SecretRow } from './rows.js';
import { createUsageRecorder } from './usage.js';

/** The secret management part of the {@link ClientStore}. */
export type SecretOperations = Pick<ClientStore, 'listSecrets' | 'rotateSecret' | 'revokeSecret'>;

/** The authentication part of the {@link ClientStore}, with its last-used bookkeeping. */
export type Authentication = Pick<ClientStore, 'authenticate' | 'flushUsage'> & Required<Pick<ClientStore, 'lookup'>>;

/**
 * An optional expiry given by a caller, in milliseconds since the epoch.
 *
 * @param what - The option's name, for the error message.
 * @throws TypeError when `value` is neither a valid Date nor null or undefined.
 */
export function checkExpiry(value: unknown, what: string): number | null {
  if (value === undefined || value === null) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${what} must be a Date or null`);
  return value.getTime();
}

/**
 * Generates a secret for a client and stores its hash. The plain secret is in the result only,
 * never in the database. The caller runs it in a registry change (see `ClientRegistry.change`).
 */
export async function insertSecret(
  trx: Knex | Knex.Transaction, t: TableNames, clientId: string, now: number, expiresAt: number | null,
): Promise<IssuedSecret> {
  const clientSecret = generateClientSecret();
  const row: SecretRow = {
    id: randomBytes(12).toString('base64url'),
    client_id: clientId,
    secret_hash: hashSecret(clientSecret),
    hint: clientSecret.slice(0, SECRET_PREFIX.length + 4),
    created_at: now,
    expires_at: expiresAt,
    last_used_at: null,
  };
  await trx(t.secrets).insert(row);
  return { clientId, clientSecret, secret: secretFromRow(row) };
}

/** Listing, rotating and revoking a client's secrets. */
export function createSecretOperations(ctx: StoreContext): SecretOperations {
  const { knex, tables: t, clock } = ctx;
  return {
    async listSecrets(clientId) {
      await requireClient(knex, t, clientId);
      const rows = await knex<SecretRow>(t.secrets).where({ client_id: clientId }).orderBy('created_at', 'desc');
      return rows.map(secretFromRow);
    },

    async rotateSecret(clientId, rotateOptions = {}) {
      const grace = rotateOptions.gracePeriod ?? 86_400;
      if (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0) {
        throw new TypeError('gracePeriod must be a number of seconds >= 0');
      }
      const expiresAt = checkExpiry(rotateOptions.expiresAt, 'expiresAt');
      return ctx.change(clientId, async (trx) => {
        const row = await requireClient(trx, t, clientId);
        if (row.token_endpoint_auth_method === 'private_key_jwt') {
          throw new ClientAuthMethodError(clientId, row.token_endpoint_auth_method, 'a private_key_jwt client has no secret: register its next key instead (clients.update with jwks)');
        }
        const now = clock();
        const until = now + grace * 1000;
        // Secrets that have already expired are dead weight for every authentication: drop them.
        await trx(t.secrets).where({ client_id: clientId }).andWhere('expires_at', '<', now).delete();
        // Older secrets keep working for the grace period, then expire; one already expiring
        // sooner keeps its earlier expiry.
        await trx(t.secrets).where({ client_id: clientId })
          .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', until))
          .update({ expires_at: until });
        const issued = await insertSecret(trx, t, clientId, now, expiresAt);
        await ctx.audit.record(trx, {
          action: 'secret.rotated', clientId, target: issued.secret.id,
          details: { expiresAt: issued.secret.expiresAt, previousSecretsExpireBy: new Date(until) },
        });
        return issued;
      });
    },

    async revokeSecret(clientId, secretId) {
      if (!isClientId(clientId) || typeof secretId !== 'string' || secretId.length > 64) return false;
      return ctx.change(clientId, async (trx) => {
        const count = await trx(t.secrets).where({ client_id: clientId, id: secretId }).delete();
        if (count > 0) await ctx.audit.record(trx, { action: 'secret.revoked', clientId, target: secretId, details: {} });
        return count > 0;
      });
    },
  };
}

/**
 * Checking a client's credentials against the registry, and recording each secret's last use.
 *
 * @param lookup - The registry's lookup (see `createClientRegistry`).
 * @param lastUsedResolution - Milliseconds between two last-used writes of one secret, at most.
 */
export function createAuthentication(ctx: StoreContext, lookup: CredentialLookup, lastUsedResolution: number): Authentication {
  const usage = createUsageRecorder(ctx.knex, ctx.tables, lastUsedResolution);
  return {
    async authenticate(clientId, clientSecret) {
      if (!isClientId(clientId) || typeof clientSecret !== 'string' || !isWellFormedSecret(clientSecret)) {
        // Malformed input: no database round trip. The shape of a secret says nothing about
        // whether a client exists, so this shortcut leaks nothing; still hash once for parity.
        matchSecret(String(clientSecret).slice(0, 256), [DUMMY_SECRET_HASH]);
        return { ok: false, reason: 'malformed_credentials' };
      }
      // One lookup however the check ends, and every hash of the client compared (or a dummy for
      // an unknown client), so an unknown client and a wrong secret take the same time.
      const found = lookup(clientId);
      const entry = found instanceof Promise ? await found : found;
      const index = matchSecret(clientSecret, entry?.hashes ?? []);
      const matched = entry?.secrets[index];
      if (entry === undefined) return { ok: false, reason: 'unknown_client' };
      if (matched === undefined) return { ok: false, reason: 'invalid_secret' };
      const now = ctx.clock();
      if (matched.expiresAt !== null && matched.expiresAt <= now) return { ok: false, reason: 'expired_secret' };
      if (!entry.client.enabled) return { ok: false, reason: 'client_disabled' };
      usage.record(matched.id, now);
      return { ok: true, client: entry.client };
    },

    async flushUsage() {
      await usage.flush();
    },

    async lookup(clientId) {
      if (!isClientId(clientId)) return undefined;
      const found = lookup(clientId);
      return (found instanceof Promise ? await found : found)?.client;
    },
  };
}
