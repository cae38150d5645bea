// The API the caller benchmark loads: a bare node:http server in its own process (so that it never
// shares an event loop with the load), answering GET /reports with a small JSON body when the
// request carries exactly `Authorization: Bearer <the benchmark's token>`, else 401. Its counter
// is the 200 answers it sent. Started by bench/caller.ts through fork(); never imported.
import { createServer } from 'node:http';
import { closeServer, listenOnLoopback, serveProcess, type StartedProcess } from './support.js';

/** What bench/caller.ts tells the target to start: JSON in argv[2]. */
export interface CallerTargetSpec {
  /** The access token every request must carry. */
  token: string;
}

/** Where the target takes requests, and what it answers. */
export interface CallerTargetInfo {
  url: string;
  body: string;
}

/** The answer to every authorized request (the same bytes each time). */
const BODY = JSON.stringify({ reports: [{ id: 1, name: 'nightly' }] });

serveProcess(async (spec: CallerTargetSpec): Promise<StartedProcess<CallerTargetInfo>> => {
  const expected = `Bearer ${spec.token}`;
  const length = String(Buffer.byteLength(BODY));
  let served = 0;
  const server = createServer((req, res) => {
    if (req.url !== '/reports') {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== expected) {
      // No error code in the challenge: the token client does not replay, the benchmark sees the 401.
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="bench"', 'content-length': '0' }).end();
      return;
    }
    served++;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': length }).end(BODY);
  });
  // The fetch and axios pools each keep their connections open while the other rows run: no
  // keep-alive timeout, so an idle socket is never closed under a client about to reuse it.
  server.keepAliveTimeout = 0;
  const port = await listenOnLoopback(server);
  return {
    info: { url: `http://127.0.0.1:${port}/reports`, body: BODY },
    count: () => served,
    close: () => closeServer(server),
  };
});
