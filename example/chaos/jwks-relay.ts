/**
 * The JWKS as the chaos run's APIs see it: each API's `jwksUri` is `<relay>/<api name>/jwks.json`,
 * which the relay fetches from the issuers (through the balancer) and passes on with its
 * `Cache-Control`, or, while failing, answers 500. It counts the requests of each API, and those
 * that arrived while it was failing: the upstream requests a guard sent to a failing JWKS.
 * Listens on 127.0.0.1 only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Requests of one API. */
export interface RelayCount {
  /** Every request. */
  total: number;
  /** Requests that arrived while the relay was failing (answered 500). */
  whileFailing: number;
  /** Milliseconds since the epoch of each request that arrived while failing. */
  failingAt: number[];
}

/** A running relay. */
export interface JwksRelay {
  /** The URL an API named `name` uses as its `jwksUri`. */
  urlFor(name: string): string;
  /** Answers 500 to every request from now on. */
  fail(): void;
  /** Passes the JWKS on again. */
  recover(): void;
  /** Requests by API name. */
  counts(): Record<string, RelayCount>;
  close(): Promise<void>;
}

const PATH = /^\/([\w-]{1,32})\/jwks\.json$/;

/** Starts a relay for the JWKS at `upstream`, on a free port of 127.0.0.1. */
export async function startJwksRelay(upstream: string): Promise<JwksRelay> {
  const counts: Record<string, RelayCount> = {};
  let failing = false;

  const server = http.createServer((req, res) => {
    void (async () => {
      const name = PATH.exec(req.url ?? '')?.[1];
      if (req.method !== 'GET' || name === undefined) return void res.writeHead(404).end();
      const count = (counts[name] ??= { total: 0, whileFailing: 0, failingAt: [] });
      count.total++;
      if (failing) {
        count.whileFailing++;
        count.failingAt.push(Date.now());
        return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
      }
      try {
        const answer = await fetch(upstream, { signal: AbortSignal.timeout(5000) });
        const headers: http.OutgoingHttpHeaders = { 'content-type': answer.headers.get('content-type') ?? 'application/json' };
        const cacheControl = answer.headers.get('cache-control');
        if (cacheControl !== null) headers['cache-control'] = cacheControl;
        res.writeHead(answer.status, headers).end(Buffer.from(await answer.arrayBuffer()));
      } catch {
        res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"bad_gateway"}');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject).listen(0, '127.0.0.1', resolve); });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    urlFor: (name) => `${base}/${name}/jwks.json`,
    fail() { failing = true; },
    recover() { failing = false; },
    counts: () => structuredClone(counts),
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
