import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import {
  applyClientUpdate, isClientId, normalizeRegistration, type Client, type ClientPublicKeys, type ClientRegistration,
} from '../core/client.js';
import { InvalidOptionError } from '../core/options.js';
import type { ClientStore, CreatedClient } from '../core/store.js';
import { ClientExistsError } from '../errors.js';
import { isUniqueViolation, requireClient, type StoreContext } from './context.js';
import { revokeClientTokens } from './revocations.js';
import { clientFromRow, clientToRow, type ClientRow } from './rows.js';
import { checkExpiry, insertSecret } from './secrets.js';

/** The client part of the {@link ClientStore}: registering, reading, changing and removing clients. */
export type ClientOperations = Pick<ClientStore, 'create' | 'get' | 'list' | 'update' | 'delete'>;

/**
 * The audit entries of an update: `client.disabled` or `client.enabled` when that changed, and
 * `client.updated` with the new value of every other field that changed.
 */
async function recordUpdate(ctx: StoreContext, trx: Knex.Transaction, current: Client, next: Omit<Client, 'createdAt' | 'updatedAt'>): Promise<void> {
  const { clientId } = current;
  const changed: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(next) as [keyof typeof next, unknown][]) {
    if (field !== 'enabled' && JSON.stringify(value) !== JSON.stringify(current[field])) changed[field] = value;
  }
  if (Object.keys(changed).length > 0) await ctx.audit.record(trx, { action: 'client.updated', clientId, target: clientId, details: changed });
  if (next.enabled !== current.enabled) {
    await ctx.audit.record(trx, { action: next.enabled ? 'client.enabled' : 'client.disabled', clientId, target: clientId, details: {} });
  }
}

/**
 * Client operations on the store's tables; every change goes through the registry's `change`.
 * Disabling and deleting a client revoke its tokens in the same transaction (see `revokeClientTokens`).
 */
export function createClientOperations(ctx: StoreContext): ClientOperations {
  const { knex, tables: t, clock } = ctx;

  async function create(input: ClientRegistration & ClientPublicKeys & { secretExpiresAt?: Date | null }): Promise<CreatedClient> {
    const client = normalizeRegistration(input, randomUUID());
    // A private_key_jwt client authenticates with its keys only: it never gets a secret.
    const keyed = client.tokenEndpointAuthMethod === 'private_key_jwt';
    if (keyed && input.secretExpiresAt !== undefined) {
      throw new InvalidOptionError('secretExpiresAt', 'secretExpiresAt does not apply to a private_key_jwt client, which has no secret');
    }
    const expiresAt = keyed ? null : checkExpiry(input.secretExpiresAt, 'secretExpiresAt');
    const now = clock();
    try {
      return await ctx.change(client.clientId, async (trx) => {
        await trx(t.clients).insert({ ...clientToRow(client), created_at: now, updated_at: now });
        const created = { ...client, createdAt: new Date(now), updatedAt: new Date(now) };
        const { clientId, ...registered } = client;
        await ctx.audit.record(trx, { action: 'client.created', clientId, target: clientId, details: { ...registered } });
        if (keyed) return { clientId, client: created };
        const issued = await insertSecret(trx, t, clientId, now, expiresAt);
        await ctx.audit.record(trx, { action: 'secret.created', clientId, target: issued.secret.id, details: { expiresAt: issued.secret.expiresAt } });
        return { ...issued, client: created };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ClientExistsError(client.clientId, { cause: err });
      throw err;
    }
  }

  return {
    // One implementation for the overloads: which result it gives follows from the registration.
    create: create as ClientStore['create'],

    async get(clientId) {
      if (!isClientId(clientId)) return undefined;
      const row = await knex<ClientRow>(t.clients).where({ client_id: clientId }).first();
      return row ? clientFromRow(row) : undefined;
    },

    async list() {
      const rows = await knex<ClientRow>(t.clients).select('*').orderBy('client_id');
      return rows.map(clientFromRow);
    },

    async update(clientId, update) {
      return ctx.change(clientId, async (trx) => {
        const current = clientFromRow(await requireClient(trx, t, clientId));
        const next = applyClientUpdate(current, update);
        const now = clock();
        await trx(t.clients).where({ client_id: clientId }).update({ ...clientToRow(next), updated_at: now });
        // A disabled client's tokens stop working too, not only its next token request.
        if (current.enabled && !next.enabled) await revokeClientTokens(trx, ctx, clientId);
        await recordUpdate(ctx, trx, current, next);
        return { ...next, createdAt: current.createdAt, updatedAt: new Date(now) };
      });
    },

    async delete(clientId) {
      if (!isClientId(clientId)) return false;
      return ctx.change(clientId, async (trx) => {
        // Secrets first: SQLite enforces ON DELETE CASCADE only when foreign keys are switched on.
        await trx(t.secrets).where({ client_id: clientId }).delete();
        const count = await trx(t.clients).where({ client_id: clientId }).delete();
        if (count === 0) return false;
        // Kept past the client: a client created again under this id must not revive its tokens.
        await revokeClientTokens(trx, ctx, clientId);
        await ctx.audit.record(trx, { action: 'client.deleted', clientId, target: clientId, details: {} });
        return true;
      });
    },
  };
}
