import type { Knex } from 'knex';
import type { ClientStore, IssuerStore, KeyStore } from '../core/store.js';
import type { TypedEvents } from '../core/events.js';
import { checkOptions, functionOption, numberOption } from '../core/options.js';
import { checkKnexInstance, checkTablePrefix } from '../core/table-prefix.js';
import { keyCipher } from '../core/key-encryption.js';
import { createClientOperations } from './clients.js';
import { auditWriter, checkActor, createAuditLog, type AuditLog } from './audit.js';
import type { StoreEventMap } from './change-feed.js';
import type { StoreContext } from './context.js';
import { createKeyStore } from './keys.js';
import { runMigrations, tableNames, type TableNames } from './migrations.js';
import { createClientRegistry } from './registry.js';
import { createAuthentication, createSecretOperations } from './secrets.js';
import { createUsedAssertionStore, type KnexUsedAssertionStore } from './used-assertions.js';
import { createClientTokenRevocation, createRevocationStore } from './revocations.js';
import type { RevocationStore } from '../core/revocations.js';

// The store is built from parts with one job each, sharing one StoreContext:
//   rows.ts      row types and row <-> domain mappers
//   context.ts   the shared context, and the "client must exist" lookup
//   registry.ts  the bounded client cache, filled on demand, and the change transaction
//   change-feed.ts       follows the change log: evicts what changed, knows when the database is away
//   change-triggers.ts   the triggers (PostgreSQL, SQLite) that write the change log
//   usage.ts     last-used times, noted in memory and written in batches
//   clients.ts   client create, get, list, update, delete
//   secrets.ts   secret list, rotate, revoke; authenticate and last-used bookkeeping
//   keys.ts      signing keys, through the key cipher
//   audit.ts     the audit trail of administrative changes, written in each change's transaction
//   used-assertions.ts  the jtis of used client assertions (private_key_jwt)
//   revocations.ts      revoked tokens and per-client cutoffs (RFC 7009), with a change cursor

/** Options of {@link createKnexStore}. */
export interface KnexStoreOptions {
  /** Prefix of every table this package creates. Default `m2m_`. Letters, digits and `_` only. */
  tablePrefix?: string;
  /** Current time in milliseconds since the epoch. Default `Date.now`. For tests. */
  clock?: () => number;
  /**
   * How often a secret's last-used time is written, at most, per secret and instance, in seconds
   * (0 to 86 400). Default 60. The write happens after the token response, never before it.
   */
  lastUsedResolution?: number;
  /**
   * Most clients whose entry (the client and its secrets' hashes) an instance keeps in memory, and
   * as many unknown client ids, each in its own least-recently-used cache (0 to 10 000 000).
   * Default 10 000. This, not the number of registered clients, bounds the memory the registry
   * takes. A client not in the cache costs one indexed query. 0 turns the cache off.
   */
  clientCacheSize?: number;
  /**
   * Age in seconds after which a cached entry is read from the database again, on its next use
   * (0 to 86 400). Default 300. A safety net: changes reach the cache through the change log
   * within `changePollInterval`. 0 turns the cache off: one query per authentication.
   */
  clientCacheTtl?: number;
  /**
   * How often, in seconds, an instance reads the change log (0.05 to 60). Default 1. Every change
   * to a client or its secrets, however it is made (this or another instance, the CLI, SQL typed
   * on the database), is recorded there by the database's triggers, and an instance stops using
   * what changed within `changePollInterval` + 1 s (2 s by default). Its own changes, at once.
   */
  changePollInterval?: number;
  /**
   * How long, in seconds, cached entries go on answering after the database stopped answering
   * (0 to 1800). Default 60. Counted from the last successful read of the change log. The
   * trade-off: a client disabled meanwhile (on a database this instance cannot reach) keeps
   * getting tokens from this instance that long. Clients not in the cache get 503.
   */
  outageWindow?: number;
  /**
   * A secret of at least 32 characters (for example `openssl rand -base64 32`, kept in a secret
   * manager, never in the database) under which private signing keys are stored encrypted
   * (AES-256-GCM, bound to their kid). Keys stored before it was set stay readable in plain text;
   * keys created after it are encrypted. An encrypted key cannot sign without it. Default: none,
   * keys are stored as PKCS#8 PEM.
   */
  keyEncryptionKey?: string;
  /**
   * How long audit entries are kept, in seconds (1 day to 10 years). Default one year.
   * `store.audit.prune()` removes older ones; the admin CLI's `audit --prune` runs it.
   */
  auditRetention?: number;
}

const OPTION_NAMES: readonly (keyof KnexStoreOptions)[] = [
  'tablePrefix', 'clock', 'lastUsedResolution', 'clientCacheSize', 'clientCacheTtl', 'changePollInterval', 'outageWindow',
  'keyEncryptionKey', 'auditRetention',
];

/** The Knex-backed {@link IssuerStore}. */
export interface KnexStore extends IssuerStore {
  /** The table names in use. */
  readonly tables: TableNames;
  /** Its clients, with {@link ClientStore.lookup} from the in-memory registry, and {@link ClientStore.revokeTokens}. */
  readonly clients: ClientStore & Required<Pick<ClientStore, 'lookup' | 'revokeTokens'>>;
  /** Its signing keys, which it can also seal (see {@link KeyStore.seal}). */
  readonly keys: KeyStore & { seal(): Promise<number> };
  /** The jtis of used client assertions, which it can also purge of expired records. */
  readonly usedAssertions: KnexUsedAssertionStore;
  /** The audit trail of administrative changes. */
  readonly audit: AuditLog;
  /**
   * `degraded` when the database stops answering (cached clients go on getting tokens for up to
   * `outageWindow`), `recovered` when it answers again. Shared by every {@link KnexStore.withActor} view.
   */
  readonly events: TypedEvents<StoreEventMap>;
  /**
   * The revocation record: tokens revoked through the issuer's revocation endpoint (RFC 7009),
   * kept until they expire, and per client the instant before which its tokens are revoked
   * (set by disabling or deleting it, and by `clients.revokeTokens`).
   */
  readonly revocations: RevocationStore;
  /**
   * The same store, its changes recorded in the audit trail as made by `actor` (1 to 200
   * printable ASCII characters, e.g. `deploy-pipeline` or `ops:alice`); without it, `app`.
   *
   * @throws TypeError for a malformed actor.
   */
  withActor(actor: string): KnexStore;
}

/**
 * Creates the issuer's store on a Knex instance: clients, their hashed secrets or public keys,
 * signing keys, used client assertions and revoked tokens, in tables prefixed `m2m_` so they never collide with
 * the host's own.
 *
 * Works on SQLite (sqlite3) and PostgreSQL (pg). Call {@link IssuerStore.migrate} once at start.
 *
 * @param knex - The host's Knex instance.
 * @param options - See {@link KnexStoreOptions}.
 * @throws {@link InvalidOptionError} (a TypeError) when `knex` is not a Knex instance or an option
 *   is unknown or malformed.
 * @example
 * ```ts
 * const store = createKnexStore(knex);
 * await store.migrate();
 * const { clientId, clientSecret } = await store.clients.create({
 *   name: 'nightly-report', scopes: ['reports:read'], audiences: ['https://reports.internal'] });
 * ```
 */
export function createKnexStore(knex: Knex, options: KnexStoreOptions = {}): KnexStore {
  checkKnexInstance(knex, 'createKnexStore');
  checkOptions<KnexStoreOptions>(options, 'createKnexStore()', OPTION_NAMES);
  const prefix = checkTablePrefix(options.tablePrefix);
  const clock = functionOption(options.clock, 'clock', Date.now);
  const resolution = numberOption(options.lastUsedResolution, 'lastUsedResolution', { fallback: 60, min: 0, max: 86_400, unit: 'seconds' }) * 1000;
  const seconds = (name: keyof KnexStoreOptions, fallback: number, min: number, max: number): number =>
    numberOption(options[name], name, { fallback, min, max, unit: 'seconds' }) * 1000;
  const registrySettings = {
    size: numberOption(options.clientCacheSize, 'clientCacheSize', { fallback: 10_000, min: 0, max: 10_000_000, integer: true }),
    ttl: seconds('clientCacheTtl', 300, 0, 86_400),
    pollInterval: seconds('changePollInterval', 1, 0.05, 60),
    outageWindow: seconds('outageWindow', 60, 0, 1800),
    clock,
  };
  const t = tableNames(prefix);
  const cipher = keyCipher(options.keyEncryptionKey);
  const auditRetention = numberOption(options.auditRetention, 'auditRetention', { fallback: 365 * 86_400, min: 86_400, max: 10 * 365 * 86_400, unit: 'seconds' }) * 1000;

  const registry = createClientRegistry(knex, t, registrySettings);
  const contextFor = (actor: string): StoreContext => ({ knex, tables: t, clock, change: registry.change, audit: auditWriter(t, clock, actor) });
  // Shared by every view: the registry's lookups and the last-used bookkeeping.
  const authentication = createAuthentication(contextFor('app'), registry.lookup, resolution);
  const audit = createAuditLog(knex, t, clock, auditRetention);
  const migrate = async () => { await runMigrations(knex, { tablePrefix: prefix }); };
  // Assertions and revocations of single tokens are no administrative change: one store for every
  // view, not audited.
  const usedAssertions = createUsedAssertionStore(contextFor('app'));
  const revocations = createRevocationStore(contextFor('app'));

  /** The store whose changes the audit trail records as made by `actor`. */
  function view(actor: string): KnexStore {
    const ctx = contextFor(actor);
    const clients: KnexStore['clients'] = {
      ...createClientOperations(ctx), ...createSecretOperations(ctx), ...createClientTokenRevocation(ctx), ...authentication,
    };
    return {
      tables: t, clients, keys: createKeyStore(ctx, cipher), usedAssertions, revocations, audit, migrate, events: registry.events,
      withActor: (next) => view(checkActor(next)),
    };
  }
  return view('app');
}
