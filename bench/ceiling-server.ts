// The ceiling: a bare Express 5 route that parses the same form, checks nothing and answers a JSON
// body of the same byte size as express-m2m's token response, with the same headers. Started by
// bench/issuer.ts through fork(); never imported.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { NO_STORE_HEADERS, SCOPE, TOKEN_LIFETIME, serveChild } from './support.js';

/** A token-response-shaped JSON text of exactly `bytes` bytes (ASCII). */
function paddedBody(bytes: number): string {
  const shell = (token: string) => JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: TOKEN_LIFETIME, scope: SCOPE });
  const padding = bytes - shell('').length;
  if (padding < 0) throw new RangeError(`bodyBytes ${bytes} is smaller than an empty token response`);
  return shell('x'.repeat(padding));
}

serveChild(async (spec) => {
  if (spec.bodyBytes === undefined) throw new TypeError('the ceiling needs bodyBytes');
  const body = paddedBody(spec.bodyBytes);
  const app = express();
  app.post('/oauth/token', express.urlencoded({ extended: false, limit: '4kb' }), (_req, res) => {
    res.status(200).set(NO_STORE_HEADERS).set('Content-Type', 'application/json; charset=utf-8').end(body);
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  return {
    tokenUrl: `http://127.0.0.1:${port}/oauth/token`,
    // Checks nothing: any credentials do; the parent sends express-m2m's so the requests are identical.
    clientId: 'ceiling',
    clientSecret: 'ceiling',
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
});
