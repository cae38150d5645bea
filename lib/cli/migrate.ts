// `express-m2m migrate`: the one command that runs without the tables, since it creates them.
import { migrationSource } from '../storage/migrations.js';
import { EXIT_OK, defineCommand } from './command.js';

/** `migrate`: applies the pending migrations and lists them. */
export const migrate = defineCommand({
  name: 'migrate',
  synopsis: '',
  summary: 'Create or upgrade the express-m2m tables (safe to run again)',
  options: {},
  needsTables: false,
  parse(args) {
    args.none();
  },
  async run(ctx) {
    const source = { migrationSource: migrationSource(ctx.store.tables), tableName: ctx.store.tables.migrations };
    const [, pending] = await ctx.knex.migrate.list(source) as [unknown[], unknown[]];
    await ctx.store.migrate();
    const applied = pending.map(String);
    ctx.print({ applied }, () => (applied.length === 0
      ? 'The database is up to date: no migration to apply.'
      : `Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}:\n${applied.map((m) => `  ${m}`).join('\n')}`));
    return EXIT_OK;
  },
});
