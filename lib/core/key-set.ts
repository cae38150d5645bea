import type { PublicJwk, SigningAlgorithm } from './keys.js';

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
 * until T + `retainSeconds` (the longest token lifetime plus clock skew), after which no token it
 * signed can still be valid. Revoked keys are dropped at once.
 *
 * @param records - All stored keys, in any order.
 * @param now - The instant, in milliseconds since the epoch.
 * @param retainSeconds - How long a superseded key stays published, in seconds.
 */
export function selectKeys(records: readonly SigningKeyRecord[], now: number, retainSeconds: number): KeySetView {
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
    if (successor.activatesAt.getTime() + retainSeconds * 1000 > now) published.push(record);
  }
  return { signing: signingIndex === -1 ? undefined : live[signingIndex], published };
}
