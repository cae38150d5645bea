import { randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import {
  applyClientUpdate, isClientId, normalizeRegistration, type Client, type GrantType,
} from '../core/client.js';
import { generateSigningKey, isSigningAlgorithm, type PublicJwk, type SigningAlgorithm } from '../core/keys.js';
import type { SigningKeyRecord } from '../core/key-set.js';
import {
  decodeSecretHash, generateClientSecret, hashSecret, isWellFormedSecret, matchSecret, DUMMY_SECRET_HASH,
  SECRET_PREFIX,
} from '../core/secrets.js';
import {
  ClientNotFoundError, type ClientSecretInfo, type ClientStore, type IssuedSecret,
  type IssuerStore, type KeyStore,
} from '../core/store.js';
import { runMigrations, tableNames, type TableNames } from './migrations.js';
import { checkKnexTables } from '../core/table-prefix.js';
import { keyCipher, type KeyCipher } from '../core/key-encryption.js';

/** Options of {@link createKnexStore}. */
export interface KnexStoreOptions {
  /** Prefix of every table this package creates. Default `m2m_`. Letters, digits and `_` only. */
  tablePrefix?: string;
  /** Current time in milliseconds since the epoch. Default `Date.now`. For tests. */
  clock?: () => number;
  /**
   * How often a secret's last-used time is written, at most, per secret and instance, in seconds.
   * Default 60. The write happens after the token response, never before it.
   */
  lastUsedResolution?: number;
  /**
   * How long, in seconds, `authenticate` may rely on this instance's in-memory copy of the client
   * registry before checking the database's revision counter again. Default 1. Every change made
   * through any store (this instance, another instance, the CLI) bumps the counter, so a disabled
   * client or a revoked secret stops working everywhere within this time. 0 turns the copy off:
   * one query per authentication.
   *
   * The copy holds every client and secret hash, so that a known and an unknown client id are
   * both answered from memory, in the same time. For registries of more than about 100 000
   * clients, consider 0.
   */
  clientCacheTtl?: number;
  /**
   * A secret of at least 32 characters (for example `openssl rand -base64 32`, kept in a secret
   * manager, never in the database) under which private signing keys are stored encrypted
   * (AES-256-GCM, bound to their kid). Keys stored before it was set stay readable in plain text;
   * keys created after it are encrypted. An encrypted key cannot sign without it. Default: none,
   * keys are stored as PKCS#8 PEM.
   */
  keyEncryptionKey?: string;
}

/** The Knex-backed {@link IssuerStore}. */
export interface KnexStore extends IssuerStore {
  /** The table names in use. */
  readonly tables: TableNames;
}

interface ClientRow {
  client_id: string;
  name: string;
  scopes: string;
  default_scopes: string;
  audiences: string;
  default_audience: string | null;
  token_lifetime: number | null;
  grant_types: string;
  enabled: boolean | number;
  claims: string;
  created_at: number | string;
  updated_at: number | string;
}

interface SecretRow {
  id: string;
  client_id: string;
  secret_hash: string;
  hint: string;
  created_at: number | string;
  expires_at: number | string | null;
  last_used_at: number | string | null;
}

interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_key: string;
  created_at: number | string;
  activates_at: number | string;
  revoked_at: number | string | null;
}

/** A client with what authentication needs of its secrets. */
interface CredentialEntry {
  client: Client;
  secrets: { id: string; expiresAt: number | null }[];
  /** The secrets' hashes, decoded once, in the order of `secrets`. */
  hashes: Buffer[];
}

/** Adds a stored secret to a client's entry. */
function addSecret(entry: CredentialEntry, id: string, hash: string, expiresAt: number | string | null): void {
  entry.secrets.push({ id, expiresAt: expiresAt === null ? null : Number(expiresAt) });
  entry.hashes.push(decodeSecretHash(hash));
}

/** The whole registry at one revision of the database. */
interface Snapshot {
  entries: Map<string, CredentialEntry>;
  revision: string;
  /** performance.now() of the last check against the database. */
  checkedAt: number;
}

// PostgreSQL returns bigint columns as strings, SQLite as numbers.
const toDate = (value: number | string): Date => new Date(Number(value));
const toDateOrNull = (value: number | string | null): Date | null => (value === null ? null : toDate(value));
const splitScopes = (value: string): string[] => (value === '' ? [] : value.split(' '));

function clientFromRow(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    name: row.name,
    scopes: splitScopes(row.scopes),
    defaultScopes: splitScopes(row.default_scopes),
    audiences: JSON.parse(row.audiences) as string[],
    defaultAudience: row.default_audience,
    tokenLifetime: row.token_lifetime === null ? null : Number(row.token_lifetime),
    grantTypes: JSON.parse(row.grant_types) as GrantType[],
    enabled: Boolean(row.enabled),
    claims: JSON.parse(row.claims) as Record<string, unknown>,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

function clientToRow(client: Omit<Client, 'createdAt' | 'updatedAt'>): Omit<ClientRow, 'created_at' | 'updated_at'> {
  return {
    client_id: client.clientId,
    name: client.name,
    scopes: client.scopes.join(' '),
    default_scopes: client.defaultScopes.join(' '),
    audiences: JSON.stringify(client.audiences),
    default_audience: client.defaultAudience,
    token_lifetime: client.tokenLifetime,
    grant_types: JSON.stringify(client.grantTypes),
    enabled: client.enabled,
    claims: JSON.stringify(client.claims),
  };
}

function secretFromRow(row: SecretRow): ClientSecretInfo {
  return {
    id: row.id,
    hint: row.hint,
    createdAt: toDate(row.created_at),
    expiresAt: toDateOrNull(row.expires_at),
    lastUsedAt: toDateOrNull(row.last_used_at),
  };
}

/**
 * A stored key. Its private key is decrypted when first read, not before: listing keys, which the
 * CLI and the JWKS do, needs no keyEncryptionKey.
 */
function keyFromRow(row: KeyRow, cipher: KeyCipher): SigningKeyRecord {
  if (!isSigningAlgorithm(row.alg)) throw new Error(`stored key ${row.kid} has an unsupported algorithm`);
  let pem: string | undefined;
  const record = {
    kid: row.kid,
    alg: row.alg,
    publicJwk: JSON.parse(row.public_jwk) as PublicJwk,
    createdAt: toDate(row.created_at),
    activatesAt: toDate(row.activates_at),
    revokedAt: toDateOrNull(row.revoked_at),
  };
  return Object.defineProperty(record, 'privateKeyPem', {
    enumerable: true,
    get: () => (pem ??= cipher.open(row.private_key, row.kid)),
  }) as SigningKeyRecord;
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number } | null;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT' || e?.errno === 19;
}

function checkExpiry(value: unknown, what: string): number | null {
  if (value === undefined || value === null) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${what} must be a Date or null`);
  return value.getTime();
}

/**
 * Creates the issuer's store on a Knex instance: clients, their hashed secrets, and signing keys,
 * in tables prefixed `m2m_` so they never collide with the host's own.
 *
 * Works on SQLite (sqlite3) and PostgreSQL (pg). Call {@link IssuerStore.migrate} once at start.
 *
 * @param knex - The host's Knex instance.
 * @param options - See {@link KnexStoreOptions}.
 * @example
 * ```ts
 * const store = createKnexStore(knex);
 * await store.migrate();
 * const { clientId, clientSecret } = await store.clients.create({
 *   name: 'nightly-report', scopes: ['reports:read'], audiences: ['https://reports.internal'] });
 * ```
 */
export function createKnexStore(knex: Knex, options: KnexStoreOptions = {}): KnexStore {
  const prefix = checkKnexTables(knex, options.tablePrefix, 'createKnexStore');
  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw new TypeError('clock must be a function returning milliseconds');
  const resolution = (options.lastUsedResolution ?? 60) * 1000;
  if (!Number.isFinite(resolution) || resolution < 0) throw new TypeError('lastUsedResolution must be a number of seconds >= 0');
  const cacheTtl = (options.clientCacheTtl ?? 1) * 1000;
  if (!Number.isFinite(cacheTtl) || cacheTtl < 0) throw new TypeError('clientCacheTtl must be a number of seconds >= 0');
  const t = tableNames(prefix);
  const cipher = keyCipher(options.keyEncryptionKey);

  const lastWritten = new Map<string, number>();
  const pendingWrites = new Set<Promise<void>>();

  function recordUse(secretId: string, now: number): void {
    const previous = lastWritten.get(secretId);
    if (previous !== undefined && now - previous < resolution) return;
    if (lastWritten.size >= 10_000) lastWritten.clear();
    lastWritten.set(secretId, now);
    // Fire and forget: a failed usage write must never fail or slow a token request.
    const write = knex(t.secrets).where({ id: secretId }).update({ last_used_at: now })
      .then(() => undefined, () => { lastWritten.delete(secretId); })
      .finally(() => { pendingWrites.delete(write); });
    pendingWrites.add(write);
  }

  async function requireClient(trx: Knex | Knex.Transaction, clientId: string): Promise<ClientRow> {
    const row = isClientId(clientId)
      ? await trx<ClientRow>(t.clients).where({ client_id: clientId }).first()
      : undefined;
    if (!row) throw new ClientNotFoundError(String(clientId));
    return row;
  }

  async function insertSecret(trx: Knex | Knex.Transaction, clientId: string, now: number, expiresAt: number | null): Promise<IssuedSecret> {
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

  // ---- the client registry, as one in-memory snapshot checked against a revision counter ----
  let snapshot: Snapshot | undefined;
  let refreshing: Promise<Snapshot> | undefined;
  let generation = 0;

  /** Every change to clients or secrets bumps the revision, in the change's own transaction. */
  async function bumpRevision(trx: Knex.Transaction): Promise<void> {
    await trx(t.revisions).where({ name: 'clients' }).increment('value', 1);
  }

  /** Runs a change in a transaction, then drops this instance's snapshot so it sees the change at once. */
  async function change<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    try {
      return await knex.transaction(work);
    } finally {
      // A refresh already under way may have read the rows before the change: its result must
      // not become the snapshot.
      generation++;
      snapshot = undefined;
      refreshing = undefined;
    }
  }

  async function readRevision(): Promise<string> {
    const row = await knex(t.revisions).where({ name: 'clients' }).first('value') as { value: number | string } | undefined;
    return String(row?.value ?? 0);
  }

  async function loadSnapshot(revision: string): Promise<Snapshot> {
    const [clientRows, secretRows] = await Promise.all([
      knex<ClientRow>(t.clients).select('*'),
      knex<SecretRow>(t.secrets).select('id', 'client_id', 'secret_hash', 'expires_at'),
    ]);
    const entries = new Map<string, CredentialEntry>();
    for (const row of clientRows) entries.set(row.client_id, { client: clientFromRow(row), secrets: [], hashes: [] });
    for (const row of secretRows) {
      const entry = entries.get(row.client_id);
      if (entry) addSecret(entry, row.id, row.secret_hash, row.expires_at);
    }
    return { entries, revision, checkedAt: performance.now() };
  }

  function currentSnapshot(): Snapshot | Promise<Snapshot> {
    // Freshness runs on the monotonic clock, not the injectable one: a test clock that stands
    // still must not freeze the registry.
    if (snapshot && performance.now() - snapshot.checkedAt < cacheTtl) return snapshot;
    if (refreshing) return refreshing;
    const started = generation;
    const previous = snapshot;
    const promise = (async () => {
      const revision = await readRevision();
      const next = previous && previous.revision === revision
        ? { ...previous, checkedAt: performance.now() }
        : await loadSnapshot(revision);
      if (generation === started) snapshot = next;
      return next;
    })().finally(() => {
      if (refreshing === promise) refreshing = undefined;
    });
    refreshing = promise;
    return promise;
  }

  /** The client's entry: from the snapshot, without a promise while it is fresh, or from the database. */
  function lookupCredentials(clientId: string): CredentialEntry | undefined | Promise<CredentialEntry | undefined> {
    if (cacheTtl === 0) return queryCredentials(clientId);
    const current = currentSnapshot();
    return current instanceof Promise ? current.then((fresh) => fresh.entries.get(clientId)) : current.entries.get(clientId);
  }

  async function queryCredentials(clientId: string): Promise<CredentialEntry | undefined> {
    const rows = await knex(t.clients)
      .leftJoin(t.secrets, `${t.secrets}.client_id`, `${t.clients}.client_id`)
      .where(`${t.clients}.client_id`, clientId)
      .select(`${t.clients}.*`, `${t.secrets}.id as secret_id`, `${t.secrets}.secret_hash`, `${t.secrets}.expires_at`) as
      (ClientRow & { secret_id: string | null; secret_hash: string | null; expires_at: number | string | null })[];
    const first = rows[0];
    if (first === undefined) return undefined;
    const entry: CredentialEntry = { client: clientFromRow(first), secrets: [], hashes: [] };
    for (const r of rows) {
      if (r.secret_id !== null && r.secret_hash !== null) addSecret(entry, r.secret_id, r.secret_hash, r.expires_at);
    }
    return entry;
  }

  const clients: ClientStore = {
    async create(input) {
      const client = normalizeRegistration(input, randomUUID());
      const expiresAt = checkExpiry(input.secretExpiresAt, 'secretExpiresAt');
      const now = clock();
      try {
        return await change(async (trx) => {
          await trx(t.clients).insert({ ...clientToRow(client), created_at: now, updated_at: now });
          const issued = await insertSecret(trx, client.clientId, now, expiresAt);
          await bumpRevision(trx);
          return { ...issued, client: { ...client, createdAt: new Date(now), updatedAt: new Date(now) } };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new TypeError(`a client with id ${JSON.stringify(client.clientId)} already exists`, { cause: err });
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
      return change(async (trx) => {
        const current = clientFromRow(await requireClient(trx, clientId));
        const next = applyClientUpdate(current, update);
        const now = clock();
        await trx(t.clients).where({ client_id: clientId }).update({ ...clientToRow(next), updated_at: now });
        await bumpRevision(trx);
        return { ...next, createdAt: current.createdAt, updatedAt: new Date(now) };
      });
    },

    async delete(clientId) {
      if (!isClientId(clientId)) return false;
      return change(async (trx) => {
        // Secrets first: SQLite enforces ON DELETE CASCADE only when foreign keys are switched on.
        await trx(t.secrets).where({ client_id: clientId }).delete();
        const count = await trx(t.clients).where({ client_id: clientId }).delete();
        if (count > 0) await bumpRevision(trx);
        return count > 0;
      });
    },

    async listSecrets(clientId) {
      await requireClient(knex, clientId);
      const rows = await knex<SecretRow>(t.secrets).where({ client_id: clientId }).orderBy('created_at', 'desc');
      return rows.map(secretFromRow);
    },

    async rotateSecret(clientId, rotateOptions = {}) {
      const grace = rotateOptions.gracePeriod ?? 86_400;
      if (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0) {
        throw new TypeError('gracePeriod must be a number of seconds >= 0');
      }
      const expiresAt = checkExpiry(rotateOptions.expiresAt, 'expiresAt');
      return change(async (trx) => {
        await requireClient(trx, clientId);
        const now = clock();
        const until = now + grace * 1000;
        // Secrets that have already expired are dead weight for every authentication: drop them.
        await trx(t.secrets).where({ client_id: clientId }).andWhere('expires_at', '<', now).delete();
        // Older secrets keep working for the grace period, then expire; one already expiring
        // sooner keeps its earlier expiry.
        await trx(t.secrets).where({ client_id: clientId })
          .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', until))
          .update({ expires_at: until });
        const issued = await insertSecret(trx, clientId, now, expiresAt);
        await bumpRevision(trx);
        return issued;
      });
    },

    async revokeSecret(clientId, secretId) {
      if (!isClientId(clientId) || typeof secretId !== 'string' || secretId.length > 64) return false;
      return change(async (trx) => {
        const count = await trx(t.secrets).where({ client_id: clientId, id: secretId }).delete();
        if (count > 0) await bumpRevision(trx);
        return count > 0;
      });
    },

    async authenticate(clientId, clientSecret) {
      if (!isClientId(clientId) || typeof clientSecret !== 'string' || !isWellFormedSecret(clientSecret)) {
        // Malformed input: no database round trip. The shape of a secret says nothing about
        // whether a client exists, so this shortcut leaks nothing; still hash once for parity.
        matchSecret(String(clientSecret).slice(0, 256), [DUMMY_SECRET_HASH]);
        return { ok: false, reason: 'malformed_credentials' };
      }
      // One lookup however the check ends, and every hash of the client compared (or a dummy for
      // an unknown client), so an unknown client and a wrong secret take the same time.
      const found = lookupCredentials(clientId);
      const entry = found instanceof Promise ? await found : found;
      const index = matchSecret(clientSecret, entry?.hashes ?? []);
      const matched = entry?.secrets[index];
      if (entry === undefined) return { ok: false, reason: 'unknown_client' };
      if (matched === undefined) return { ok: false, reason: 'invalid_secret' };
      const now = clock();
      if (matched.expiresAt !== null && matched.expiresAt <= now) return { ok: false, reason: 'expired_secret' };
      if (!entry.client.enabled) return { ok: false, reason: 'client_disabled' };
      recordUse(matched.id, now);
      return { ok: true, client: entry.client };
    },

    async flushUsage() {
      while (pendingWrites.size > 0) await Promise.all([...pendingWrites]);
    },
  };

  const keys: KeyStore = {
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
      await knex(t.keys).insert({
        kid: key.kid, alg, public_jwk: JSON.stringify(key.publicJwk), private_key: cipher.seal(key.privateKeyPem, key.kid),
        created_at: now, activates_at: now, revoked_at: null,
      });
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
      const row: KeyRow = {
        kid: key.kid, alg, public_jwk: JSON.stringify(key.publicJwk), private_key: cipher.seal(key.privateKeyPem, key.kid),
        created_at: now, activates_at: now + Math.round(activateAfter * 1000), revoked_at: null,
      };
      await knex(t.keys).insert(row);
      return keyFromRow(row, cipher);
    },

    async revoke(kid) {
      if (typeof kid !== 'string' || kid.length > 64) return false;
      const count = await knex(t.keys).where({ kid }).whereNull('revoked_at').update({ revoked_at: clock() });
      return count > 0;
    },
  };

  return {
    tables: t,
    clients,
    keys,
    async migrate() {
      await runMigrations(knex, { tablePrefix: prefix });
    },
  };
}
