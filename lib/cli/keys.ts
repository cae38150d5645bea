// `express-m2m keys ...`: list, rotate in and revoke signing keys. A private key is never printed.
import { keyStates, type SigningKeyRecord } from '../core/key-set.js';
import { isSigningAlgorithm, SIGNING_ALGORITHMS } from '../core/keys.js';
import { EXIT_OK, defineCommand, type Context, type OptionSpec } from './command.js';
import { CliError, UsageError, quote } from './errors.js';
import { keyJson, shortDate, table, type KeyListing, type KeyState } from './format.js';
import { revocationOf, revokedKeys } from './key-rows.js';

const DEFAULT_ACTIVATE_AFTER = 600;
// The issuer keeps a superseded key published for its longest token lifetime plus a minute of skew.
const CLOCK_SKEW = 60;

/**
 * Each key's state at `now`, as the issuer computes it from the retention stored with each key.
 * `maxTokenLifetime`, when given, is the issuer's: no key is retired sooner than it allows.
 */
const statesAt = (records: readonly SigningKeyRecord[], now: number, maxTokenLifetime?: number): Map<string, KeyState> =>
  keyStates(records, now, maxTokenLifetime === undefined ? 0 : maxTokenLifetime + CLOCK_SKEW);

const MAX_TOKEN_LIFETIME_OPTION: OptionSpec = {
  type: 'string', value: 'SECONDS',
  description: "the issuer's maxTokenLifetime: a retired key stays published at least this long plus 60 s "
    + '(default: the retention the issuer stored with each key)',
};

/** The keys `keys list` shows, each with its state, oldest activation first. */
async function listedKeys(ctx: Context, all: boolean, maxTokenLifetime: number | undefined):
  Promise<{ shown: { key: KeyListing; state: KeyState }[]; hidden: number }> {
  const live = await ctx.store.keys.list();
  const states = statesAt(live, Date.now(), maxTokenLifetime);
  const every = [
    ...live.map((key) => ({ key, state: states.get(key.kid) ?? 'expired' })),
    ...(await revokedKeys(ctx)).map((key) => ({ key, state: 'revoked' as const })),
  ].sort((a, b) => a.key.activatesAt.getTime() - b.key.activatesAt.getTime() || a.key.createdAt.getTime() - b.key.createdAt.getTime());
  const shown = all ? every : every.filter(({ state }) => state !== 'expired' && state !== 'revoked');
  return { shown, hidden: every.length - shown.length };
}

function keysTable(shown: readonly { key: KeyListing; state: KeyState }[], all: boolean): string {
  return table(
    ['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATES', ...(all ? ['REVOKED'] : [])],
    shown.map(({ key, state }) => [key.kid, key.alg, state, shortDate(key.createdAt), shortDate(key.activatesAt),
      ...(all ? [shortDate(key.revokedAt)] : [])]),
  );
}

/** `keys list`: the signing keys in use, or with `--all` every one, each with its state. */
export const keysList = defineCommand({
  name: 'keys list',
  synopsis: '[--all] [--max-token-lifetime SECONDS]',
  summary: 'List the signing keys in use and their states; --all adds the expired and revoked ones',
  options: {
    all: { type: 'boolean', description: 'also list the keys no longer published: expired and revoked ones' },
    'max-token-lifetime': MAX_TOKEN_LIFETIME_OPTION,
  },
  needsTables: true,
  parse(args) {
    args.none();
    return { all: args.flag('all'), maxTokenLifetime: args.seconds('max-token-lifetime') };
  },
  async run(ctx, { all, maxTokenLifetime }) {
    const { shown, hidden } = await listedKeys(ctx, all, maxTokenLifetime);
    const note = hidden === 0 ? '' : `\n\n${hidden} expired or revoked key${hidden === 1 ? ' is' : 's are'} not shown: \`keys list --all\` lists ${hidden === 1 ? 'it' : 'them'}.`;
    ctx.print({ keys: shown.map(({ key, state }) => keyJson(key, state)) }, () => (shown.length === 0
      ? `${hidden === 0 ? 'No signing keys.' : 'No signing key in use.'} The issuer creates one on its first token request, or run \`express-m2m keys rotate\`.${note}`
      : `${keysTable(shown, all)}${note}`));
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
      throw new UsageError(`--alg must be one of ${SIGNING_ALGORITHMS.join(', ')}, got ${quote(alg)}`, args.usage, 'ERR_M2M_INVALID_OPTION');
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
    const states = statesAt(await ctx.store.keys.list(), Date.now(), maxTokenLifetime);
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
    if (!(await ctx.store.keys.revoke(kid))) {
      // The store says no for an unknown kid and for a revoked one alike: tell them apart.
      const revokedAt = await revocationOf(ctx, kid);
      if (revokedAt) throw new CliError(`key ${quote(kid)} is already revoked (since ${shortDate(revokedAt)})`, 'ERR_M2M_KEY_REVOKED');
      throw new CliError(`no signing key with kid ${quote(kid)}`, 'ERR_M2M_KEY_NOT_FOUND');
    }
    const remaining = statesAt(await ctx.store.keys.list(), Date.now());
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
    if (!ctx.io.env.M2M_KEY_ENCRYPTION_KEY) throw new CliError('keys seal needs M2M_KEY_ENCRYPTION_KEY (at least 32 characters, for example: openssl rand -base64 32)', 'ERR_M2M_INVALID_ENV');
    const sealed = await ctx.store.keys.seal();
    ctx.print({ sealed }, () => (sealed === 0
      ? 'Every private key is already stored encrypted.'
      : `Sealed ${sealed} private key${sealed === 1 ? '' : 's'}: stored encrypted from now on. Give the issuer the same keyEncryptionKey.`));
    return EXIT_OK;
  },
});
