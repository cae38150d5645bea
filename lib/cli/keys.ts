// `express-m2m keys ...`: list, rotate in and revoke signing keys. A private key is never printed.
import { selectKeys, type SigningKeyRecord } from '../core/key-set.js';
import { isSigningAlgorithm, SIGNING_ALGORITHMS } from '../core/keys.js';
import { CliError, EXIT_OK, UsageError, defineCommand, type OptionSpec } from './command.js';
import { keyJson, shortDate, table, type KeyState } from './format.js';

const DEFAULT_ACTIVATE_AFTER = 600;
// The issuer keeps a superseded key published for its longest token lifetime plus a minute of skew.
const CLOCK_SKEW = 60;

/**
 * Each key's state at `now`, from the retention stored with each key, as the issuer computes it.
 * `maxTokenLifetime`, when given, is the issuer's: no key is retired sooner than it allows.
 */
function keyStates(records: readonly SigningKeyRecord[], now: number, maxTokenLifetime?: number): Map<string, KeyState> {
  const view = selectKeys(records, now, maxTokenLifetime === undefined ? 0 : maxTokenLifetime + CLOCK_SKEW);
  const published = new Set(view.published.map((k) => k.kid));
  return new Map(records.map((k): [string, KeyState] => [
    k.kid,
    k.kid === view.signing?.kid ? 'active'
      : k.activatesAt.getTime() > now ? 'pending'
        : published.has(k.kid) ? 'retired-but-published' : 'expired',
  ]));
}

const MAX_TOKEN_LIFETIME_OPTION: OptionSpec = {
  type: 'string', value: 'SECONDS',
  description: "the issuer's maxTokenLifetime: a retired key stays published at least this long plus 60 s "
    + '(default: the retention the issuer stored with each key)',
};

/** `keys list`: every signing key with its state, oldest activation first. */
export const keysList = defineCommand({
  name: 'keys list',
  synopsis: '[--max-token-lifetime SECONDS]',
  summary: 'List signing keys: kid, alg, state (pending, active, retired-but-published, expired), dates',
  options: { 'max-token-lifetime': MAX_TOKEN_LIFETIME_OPTION },
  needsTables: true,
  parse(args) {
    args.none();
    return args.seconds('max-token-lifetime');
  },
  async run(ctx, maxTokenLifetime) {
    const keys = (await ctx.store.keys.list()).sort((a, b) =>
      a.activatesAt.getTime() - b.activatesAt.getTime() || a.createdAt.getTime() - b.createdAt.getTime());
    const states = keyStates(keys, Date.now(), maxTokenLifetime);
    const stateOf = (key: SigningKeyRecord): KeyState => states.get(key.kid) ?? 'expired';
    ctx.print({ keys: keys.map((k) => keyJson(k, stateOf(k))) }, () => (keys.length === 0
      ? 'No signing keys. The issuer creates one on its first token request, or run `express-m2m keys rotate`.'
      : table(
        ['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATES'],
        keys.map((k) => [k.kid, k.alg, stateOf(k), shortDate(k.createdAt), shortDate(k.activatesAt)]),
      )));
    return EXIT_OK;
  },
});

/** `keys rotate`: adds a key that signs once `--activate-after` has passed. */
export const keysRotate = defineCommand({
  name: 'keys rotate',
  synopsis: '[--alg ES256|RS256|PS256] [--activate-after SECONDS] [--allow-plaintext]',
  summary: 'Add a signing key: published at once, signing after a delay so verifiers fetch it first',
  options: {
    alg: { type: 'string', value: 'ALG', description: 'ES256 (default), RS256 or PS256' },
    'activate-after': { type: 'string', value: 'SECONDS', description: `delay before the key signs tokens (default ${DEFAULT_ACTIVATE_AFTER})` },
    'max-token-lifetime': {
      type: 'string', value: 'SECONDS',
      description: "the issuer's maxTokenLifetime: once retired, the new key stays published this long plus 60 s "
        + '(default: as long as the newest key)',
    },
    'allow-plaintext': {
      type: 'boolean',
      description: 'store the new private key in plain text even though other keys are stored encrypted (without M2M_KEY_ENCRYPTION_KEY)',
    },
  },
  needsTables: true,
  parse(args) {
    args.none();
    const alg = args.string('alg') ?? 'ES256';
    if (!isSigningAlgorithm(alg)) {
      throw new UsageError(`--alg must be one of ${SIGNING_ALGORITHMS.join(', ')}, got ${JSON.stringify(alg)}`, args.usage);
    }
    return {
      alg,
      activateAfter: args.seconds('activate-after') ?? DEFAULT_ACTIVATE_AFTER,
      maxTokenLifetime: args.seconds('max-token-lifetime'),
      allowPlaintext: args.flag('allow-plaintext'),
    };
  },
  async run(ctx, { alg, activateAfter, maxTokenLifetime, allowPlaintext }) {
    const key = await ctx.store.keys.rotate({
      alg, activateAfter, allowPlaintext, ...(maxTokenLifetime === undefined ? {} : { retention: maxTokenLifetime + CLOCK_SKEW }),
    });
    const states = keyStates(await ctx.store.keys.list(), Date.now(), maxTokenLifetime);
    const state = states.get(key.kid) ?? 'pending';
    if (![...states.values()].includes('active')) {
      ctx.io.stderr.write(`Warning: no key signs tokens until ${shortDate(key.activatesAt)}; `
        + 'use --activate-after 0 for the first key.\n');
    }
    ctx.print({ key: keyJson(key, state) }, () => (state === 'pending'
      ? `Added ${alg} key ${key.kid}: published now, signs tokens from ${shortDate(key.activatesAt)}.`
      : `Added ${alg} key ${key.kid}: ${state} now.`));
    return EXIT_OK;
  },
});

/** `keys revoke KID`: withdraws a key at once. */
export const keysRevoke = defineCommand({
  name: 'keys revoke',
  synopsis: 'KID',
  summary: 'Withdraw a signing key at once (a compromised key): no longer published, never used again',
  options: {},
  needsTables: true,
  parse: (args) => args.single('key id'),
  async run(ctx, kid) {
    if (!(await ctx.store.keys.revoke(kid))) throw new CliError(`no signing key with kid ${JSON.stringify(kid.slice(0, 64))}`);
    const remaining = keyStates(await ctx.store.keys.list(), Date.now());
    if (![...remaining.values()].includes('active')) {
      ctx.io.stderr.write('Warning: no active key is left; the issuer creates a new one on its next token request.\n');
    }
    ctx.print({ revoked: kid }, () => `Revoked key ${kid}. Tokens it signed no longer verify once verifiers refresh their JWKS.`);
    return EXIT_OK;
  },
});

/** `keys seal`: encrypts the private keys still stored in plain text with M2M_KEY_ENCRYPTION_KEY. */
export const keysSeal = defineCommand({
  name: 'keys seal',
  synopsis: '',
  summary: 'Encrypt the private keys still stored in plain text, with M2M_KEY_ENCRYPTION_KEY (required)',
  options: {},
  needsTables: true,
  parse(args) {
    args.none();
  },
  async run(ctx) {
    if (!ctx.io.env.M2M_KEY_ENCRYPTION_KEY) throw new CliError('keys seal needs M2M_KEY_ENCRYPTION_KEY (at least 32 characters, for example: openssl rand -base64 32)');
    const sealed = await ctx.store.keys.seal();
    ctx.print({ sealed }, () => (sealed === 0
      ? 'Every private key is already stored encrypted.'
      : `Sealed ${sealed} private key${sealed === 1 ? '' : 's'}: stored encrypted from now on. Give the issuer the same keyEncryptionKey.`));
    return EXIT_OK;
  },
});
