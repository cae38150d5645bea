import { selectKeys, type SigningKeyRecord } from '../core/key-set.js';
import { importPrivateKey, matchesPublicJwk, type PublicJwk, type SigningAlgorithm } from '../core/keys.js';
import { createTokenSigner, type TokenSigner } from '../core/token.js';
import { KeyMismatchError } from '../errors.js';
import type { IssuerSettings } from './issuer-options.js';
import { unavailable } from '../core/unavailable.js';

/** The issuer's keys as last read from the store. */
export interface LoadedKeys {
  signer: TokenSigner | undefined;
  /** Why the signing key could not be loaded (say, it cannot be decrypted); the JWKS is served all the same. */
  signerError: unknown;
  kid: string | undefined;
  /** The signing key's algorithm, with `kid`. */
  alg: SigningAlgorithm | undefined;
  jwks: { keys: PublicJwk[] };
  loadedAt: number;
}

/** The issuer's signing key and published keys; see {@link createSigningKeys}. */
export interface SigningKeys {
  /** The loaded keys when younger than `keyCacheTtl`, without a promise (the token endpoint's common case). */
  fresh(): LoadedKeys | undefined;
  /** The loaded keys, read again from the store when older than `keyCacheTtl`. */
  current(): Promise<LoadedKeys>;
}

/**
 * Keeps the issuer's keys: a first key is created when the store holds none (once), the key list
 * is read from the store at most every `keyCacheTtl` seconds, and each signing key is imported
 * once and handed to one {@link TokenSigner}, never per request. While the store is briefly
 * unreachable the last key set is served.
 */
export function createSigningKeys(
  settings: Pick<IssuerSettings, 'store' | 'signingAlgorithm' | 'maxTokenLifetime' | 'keyCacheTtl' | 'clock'>,
  onPlaintext: (kids: string[]) => void,
): SigningKeys {
  const { store, clock } = settings;
  /** Plain-text keys already reported, so that each is reported once. */
  const reported = new Set<string>();
  let ensured: Promise<void> | undefined;
  let loaded: LoadedKeys | undefined;
  let loading: Promise<LoadedKeys> | undefined;
  const signers = new Map<string, TokenSigner>();

  function ensureKey(): Promise<void> {
    // The retention is recorded with the key, so the CLI shows the states this issuer uses.
    ensured ??= store.keys.ensure(settings.signingAlgorithm, { retention: settings.maxTokenLifetime + 60 }).catch((err: unknown) => {
      ensured = undefined;
      throw err;
    });
    return ensured;
  }

  function signerFor(kid: string, create: () => TokenSigner): TokenSigner {
    let signer = signers.get(kid);
    if (!signer) {
      signer = create();
      for (const old of signers.values()) old.dispose();
      signers.clear();
      signers.set(kid, signer);
    }
    return signer;
  }

  function reportPlaintext(keys: readonly SigningKeyRecord[]): void {
    const kids = keys.filter((k) => k.encrypted === false && !reported.has(k.kid)).map((k) => k.kid);
    for (const kid of kids) reported.add(kid);
    if (kids.length > 0) onPlaintext(kids);
  }

  /** A signer for `key`, once its private key is checked against its published public key. */
  function importSigner(key: SigningKeyRecord): TokenSigner {
    const privateKey = importPrivateKey(key.privateKeyPem);
    if (!matchesPublicJwk(privateKey, key.publicJwk)) throw new KeyMismatchError(key.kid);
    return createTokenSigner({ kid: key.kid, alg: key.alg, privateKey });
  }

  async function load(): Promise<LoadedKeys> {
    await ensureKey();
    const now = clock();
    const view = selectKeys(await store.keys.list(), now, settings.maxTokenLifetime + 60);
    reportPlaintext(view.published);
    let signer: TokenSigner | undefined;
    let signerError: unknown;
    const key = view.signing;
    if (key) {
      try {
        signer = signerFor(key.kid, () => importSigner(key));
      } catch (err) {
        signerError = err;
      }
    }
    return { signer, signerError, kid: key?.kid, alg: key?.alg, jwks: { keys: view.published.map((k) => k.publicJwk) }, loadedAt: now };
  }

  const fresh = (): LoadedKeys | undefined =>
    (loaded !== undefined && clock() - loaded.loadedAt < settings.keyCacheTtl * 1000 ? loaded : undefined);

  function current(): Promise<LoadedKeys> {
    const keys = fresh();
    if (keys) return Promise.resolve(keys);
    loading ??= load().then(
      (next) => { loaded = next; return next; },
      (err: unknown) => {
        // Keep serving the last good key set if the store is briefly unreachable.
        if (loaded) return loaded;
        throw unavailable('signing keys are unavailable', err);
      },
    ).finally(() => { loading = undefined; });
    return loading;
  }

  return { fresh, current };
}
