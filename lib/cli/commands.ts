// Every command of the CLI, in the order help lists them.
import type { CommandSet } from './help.js';
import { clientsRevokeSecret, clientsRotateSecret } from './client-secrets.js';
import { clientsRevokeTokens } from './client-tokens.js';
import { clientsUpdate } from './client-update.js';
import { clientsCreate, clientsDelete, clientsDisable, clientsEnable, clientsList, clientsShow } from './clients.js';
import { keysList, keysRevoke, keysRotate, keysSeal } from './keys.js';
import { migrate } from './migrate.js';
import { audit } from './audit.js';

/** The commands `main` dispatches to; `clients` and `keys` name groups of two-word commands. */
export const COMMANDS: CommandSet = {
  commands: [
    migrate, clientsCreate, clientsList, clientsShow, clientsUpdate, clientsRotateSecret, clientsRevokeSecret, clientsRevokeTokens,
    clientsDisable, clientsEnable, clientsDelete, keysList, keysRotate, keysRevoke, keysSeal, audit,
  ],
  groups: ['clients', 'keys'],
};
