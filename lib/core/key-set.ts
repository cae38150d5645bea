import type { PublicJwk, SigningAlgorithm } from './keys.js';

/**
 * How long a retired key stays published, in seconds, when its record does not say: the issuer's
 * default `maxTokenLifetime` (3600) plus one minute of clock skew. Keys stored before retention was
 * recorded with them (before the `20261206000000_key_retention` migration) get this value.
 */
export const DEFAULT_KEY_RETENTION = 3660;

/**
 * A stored signing key as the issuer sees it.
 *
 * `privateKeyPem` is secret material. Stores should define it as a non-enumerable property, as
 * `createKnexStore` does, so that `JSON.stringify`, `util.inspect` (and so `console.log`), object
 * spread and `structuredClone` of a record, or of a list of them, never carry it; reading
 * `record.privateKeyPem` still returns it.
 */
export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlgorithm;
  publicJwk: PublicJwk;
  /** PKCS#8 PEM. Non-enumerable in the records `createKnexStore` returns (see above). */
  privateKeyPem: string;
  createdAt: Date;
  /** From this instant the key signs new tokens (until a later key activates). */
  activatesAt: Date;
  /** Set when the key was withdrawn at once (compromise); such a key is never used or published. */
  revokedAt: Date | null;
  /**
   * How long the key stays published once a later key has taken over signing, in seconds: the
   * longest lifetime of a token it signed plus clock skew. Written when the key is created
   * (the issuer records its `maxTokenLifetime` + 60); {@link DEFAULT_KEY_RETENTION} for keys stored
   * before it was recorded.
   */
  retention: number;
  /**
   * Whether the private key is stored encrypted (a store with `keyEncryptionKey`). The issuer
   * reports plain-text keys through its `keys.plaintext` event. Undefined when a store does not say.
   */
  encrypted?: boolean;
}

/** Where each key stands at one instant. */
export interface KeySetView {
  /** The key that signs new tokens, or undefined when no key is active yet. */
  signing: SigningKeyRecord | undefined;
  /** Keys to publish: pending ones (published before they sign), the signing one, and retired ones
   *  whose tokens may still be alive. */
  published: SigningKeyRecord[];
}

function compare(a: SigningKeyRecord, b: SigningKeyRecord): number {
  return a.activatesAt.getTime() - b.activatesAt.getTime() || a.createdAt.getTime() - b.createdAt.getTime()
    || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0);
}

/**
 * Decides which key signs and which keys are published at `now`, from the stored records alone, so
 * that every instance on the same database reaches the same answer without coordination.
 *
 * Rotation in stages: a key whose `activatesAt` is in the future is published but does not sign; the
 * latest key whose `activatesAt` has passed signs; a key superseded at instant T stays published
 * until T + its `retention` (the longest token lifetime plus clock skew), after which no token it
 * signed can still be valid. Revoked keys are dropped at once.
 *
 * @param records - All stored keys, in any order.
 * @param now - The instant, in milliseconds since the epoch.
 * @param minRetention - A floor under every key's `retention`, in seconds; default 0. The issuer
 *   passes its own `maxTokenLifetime` + 60, so that it never drops a key while a token it signed
 *   with it may still be valid, whatever a record says.
 * @example
 * ```ts
 * const { signing, published } = selectKeys(await store.keys.list(), Date.now());
 * ```
 */
export function selectKeys(records: readonly SigningKeyRecord[], now: number, minRetention = 0): KeySetView {
  const live = records.filter((r) => r.revokedAt === null).sort(compare);
  let signingIndex = -1;
  for (let i = 0; i < live.length; i++) {
    if ((live[i] as SigningKeyRecord).activatesAt.getTime() <= now) signingIndex = i;
  }
  const published: SigningKeyRecord[] = [];
  for (let i = 0; i < live.length; i++) {
    const record = live[i] as SigningKeyRecord;
    if (i >= signingIndex) {
      published.push(record);
      continue;
    }
    const successor = live[i + 1] as SigningKeyRecord;
    if (successor.activatesAt.getTime() + retentionOf(record, minRetention) * 1000 > now) published.push(record);
  }
  return { signing: signingIndex === -1 ? undefined : live[signingIndex], published };
}

function retentionOf(record: SigningKeyRecord, minRetention: number): number {
  // A record from a store that predates the field (say, a host's own store in JavaScript) has none:
  // a missing value must not drop the key at once.
  const own = Number.isFinite(record.retention) ? record.retention : DEFAULT_KEY_RETENTION;
  return Math.max(own, minRetention);
}

/** Where a key stands: signing soon, signing now, still published for its tokens, or done. */
export type KeyState = 'pending' | 'active' | 'retired-but-published' | 'expired';

/**
 * Each key's state at `now`, as {@link selectKeys} decides it, by kid. `minRetention` is the
 * issuer's floor (its `maxTokenLifetime` + 60), as for `selectKeys`.
 */
export function keyStates(records: readonly SigningKeyRecord[], now: number, minRetention = 0): Map<string, KeyState> {
  const view = selectKeys(records, now, minRetention);
  const published = new Set(view.published.map((k) => k.kid));
  return new Map(records.map((k): [string, KeyState] => [
    k.kid,
    k.kid === view.signing?.kid ? 'active'
      : k.activatesAt.getTime() > now ? 'pending'
        : published.has(k.kid) ? 'retired-but-published' : 'expired',
  ]));
}
