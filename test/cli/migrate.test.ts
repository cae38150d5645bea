import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { cli, json, MIGRATIONS, useSqliteDatabase } from './harness.js';

describe('express-m2m CLI: migrate', function () {
  this.timeout(60_000);
  const db = useSqliteDatabase({ migrated: false });

  describe('migrate', function () {
    it('creates the tables in a new SQLite file and names the applied migration', async function () {
      const run = await cli(['migrate'], { env: db.env });
      expect(run).to.deep.equal({ code: 0, stdout: `Applied ${MIGRATIONS.length} migrations:\n${MIGRATIONS.map((m) => `  ${m}\n`).join('')}`, stderr: '' });
      for (const table of ['m2m_clients', 'm2m_client_secrets', 'm2m_signing_keys']) {
        expect(await db.knex.schema.hasTable(table), table).to.equal(true);
      }
    });

    it('applies nothing when run again', async function () {
      expect((await cli(['migrate'], { env: db.env })).code).to.equal(0);
      const second = await cli(['migrate'], { env: db.env });
      expect(second).to.deep.equal({ code: 0, stdout: 'The database is up to date: no migration to apply.\n', stderr: '' });
      expect(json(await cli(['migrate', '--json'], { env: db.env }))).to.deep.equal({ applied: [] });
      expect(await db.store.clients.list()).to.deep.equal([]);
    });

    it('lists the applied migrations as JSON with --json', async function () {
      expect(json(await cli(['migrate', '--json'], { env: db.env }))).to.deep.equal({ applied: MIGRATIONS });
    });

    it('accepts the database as --database, with sqlite:, file: or a plain .db path', async function () {
      for (const url of [`sqlite:${join(db.dir, 'a.sqlite')}`, `file:${join(db.dir, 'b.sqlite3')}`, join(db.dir, 'c.db')]) {
        expect(json(await cli(['migrate', '--json', '--database', url])), url).to.deep.equal({ applied: MIGRATIONS });
      }
      for (const name of ['a.sqlite', 'b.sqlite3', 'c.db']) expect(existsSync(join(db.dir, name)), name).to.equal(true);
    });

    it('puts the tables under another prefix with --table-prefix', async function () {
      expect(json(await cli(['migrate', '--json', '--table-prefix', 'auth_'], { env: db.env }))).to.deep.equal({ applied: MIGRATIONS });
      expect(await db.knex.schema.hasTable('auth_clients')).to.equal(true);
      expect(await db.knex.schema.hasTable('m2m_clients')).to.equal(false);
    });
  });
});
