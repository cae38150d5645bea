import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { applyClientUpdate, isClientId, normalizeRegistration, type Client } from '../core/client.js';
import type { ClientStore } from '../core/store.js';
import { ClientExistsError } from '../errors.js';
import { requireClient, type StoreContext } from './context.js';
import { clientFromRow, clientToRow, type ClientRow } from './rows.js';
import { checkExpiry, insertSecret } from './secrets.js';

/** The client part of the {@link ClientStore}: registering, reading, changing and removing clients. */
export type ClientOperations = Pick<ClientStore, 'create' | 'get' | 'list' | 'update' | 'delete'>;

/** A duplicate key: PostgreSQL's unique_violation (23505), or SQLite's constraint error (errno 19). */
function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number } | null;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT' || e?.errno === 19;
}

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

/** Client operations on the store's tables; every change goes through the registry's `change`. */
export function createClientOperations(ctx: StoreContext): ClientOperations {
  const { knex, tables: t, clock } = ctx;
  return {
    async create(input) {
      const client = normalizeRegistration(input, randomUUID());
      const expiresAt = checkExpiry(input.secretExpiresAt, 'secretExpiresAt');
      const now = clock();
      try {
        return await ctx.change(client.clientId, async (trx) => {
          await trx(t.clients).insert({ ...clientToRow(client), created_at: now, updated_at: now });
          const issued = await insertSecret(trx, t, client.clientId, now, expiresAt);
          const { clientId, ...registered } = client;
          await ctx.audit.record(trx, { action: 'client.created', clientId, target: clientId, details: { ...registered } });
          await ctx.audit.record(trx, { action: 'secret.created', clientId, target: issued.secret.id, details: { expiresAt: issued.secret.expiresAt } });
          return { ...issued, client: { ...client, createdAt: new Date(now), updatedAt: new Date(now) } };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new ClientExistsError(client.clientId, { cause: err });
        throw err;
      }
    },

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
        if (count > 0) await ctx.audit.record(trx, { action: 'client.deleted', clientId, target: clientId, details: {} });
        return count > 0;
      });
    },
  };
}
