/**
 * What the parts of one token client share ({@link ClientContext}): its resolved options, cache
 * keys, current entry, token endpoint and events. Built once per client by
 * {@link createClientContext} and handed to the acquisition, retry and single-flight code.
 */
import { deriveCacheKeys, type CacheKeys } from './cache.js';
import type { ResolvedOptions } from './options.js';
import { createEntrySlot, type EntrySlot } from './token-entry.js';
import { createTypedEmitter } from '../core/events.js';
import { recordTokenEvent } from './token-telemetry.js';
import type { CacheErrorEvent, Emit, TokenClientEventMap, TokenClientEvents } from './token-events.js';
import { createTokenUrl, type Discover, type TokenUrl } from './token-url.js';

/** One client's shared state and helpers. */
export interface ClientContext {
  readonly opts: ResolvedOptions;
  readonly clientId: string;
  /** The client's cache key and sealing key. */
  readonly keys: CacheKeys;
  /** The key of the shared cache's lock on this client's entry. */
  readonly lockKey: string;
  readonly slot: EntrySlot;
  readonly tokenUrl: TokenUrl;
  /** The client's `events`. */
  readonly events: TokenClientEvents;
  readonly emit: Emit;
  /**
   * Runs one operation on the shared cache; when it fails, reports `cache.error` and resolves to
   * `fallback`, so that a cache outage never fails a token call.
   */
  cached<T>(operation: CacheErrorEvent['operation'], run: () => Promise<T>, fallback: T): Promise<T>;
}

/** The {@link ClientContext} of a client with `opts`, reading issuer metadata through `discover`. */
export function createClientContext(opts: ResolvedOptions, discover: Discover): ClientContext {
  const { clientId } = opts;
  const keys = deriveCacheKeys(opts.credential, [
    opts.tokenUrl ?? `issuer:${opts.issuer ?? ''}`, clientId, opts.authMethod, opts.scope,
    opts.audience.join(' '), opts.resource.join(' '), JSON.stringify(opts.params),
  ]);
  const typed = createTypedEmitter<TokenClientEventMap>();
  const { events } = typed;
  const emit: Emit = (name, payload) => {
    recordTokenEvent(name, payload);
    typed.emit(name, payload);
  };
  return {
    opts, clientId, keys, lockKey: `${keys.id}:lock`, events, emit,
    slot: createEntrySlot(opts),
    tokenUrl: createTokenUrl(opts, discover),
    async cached(operation, run, fallback) {
      try {
        return await run();
      } catch (error) {
        emit('cache.error', { clientId, operation, error });
        return fallback;
      }
    },
  };
}
