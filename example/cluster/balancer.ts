/**
 * A tiny round-robin HTTP load balancer for the cluster demo, in the demo's own process: each
 * request goes to the next backend; when that backend cannot be reached (refused, reset, closed
 * before it answered), the request is sent to the next one, so stopping one issuer instance fails
 * no request another can serve. Bodies are buffered (token requests are at most 4 kB) so that a
 * request can be sent again. Not for production: no health checks, no streaming, no TLS.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the balancer did, per backend port. */
export interface BalancerStats {
  /** Requests answered by each backend. */
  served: Record<number, number>;
  /** Connection errors, by backend and error code; each one sent the request to the next backend. */
  connectionErrors: Record<string, number>;
  /** Requests no backend could answer (502). */
  failed: number;
}

/** A running balancer. */
export interface Balancer {
  url: string;
  setBackends(ports: number[]): void;
  stats(): BalancerStats;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);
const MAX_BODY = 64 * 1024;

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

/** Starts the balancer on a free port of 127.0.0.1; backends are given once they are known. */
export async function startBalancer(): Promise<Balancer> {
  const agent = new http.Agent({ keepAlive: true });
  const stats: BalancerStats = { served: {}, connectionErrors: {}, failed: 0 };
  let backends: number[] = [];
  let turn = 0;

  /** Resolves once the answer is passed on; rejects, without having answered, if the backend could not be reached. */
  function forward(port: number, req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    return new Promise((resolve, reject) => {
      const headers = { ...endToEnd(req.headers), 'content-length': String(body.length), 'x-forwarded-for': req.socket.remoteAddress ?? '' };
      const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        res.once('close', resolve);
        answer.pipe(res);
        answer.once('error', () => res.destroy());
      });
      upstream.once('error', (err: NodeJS.ErrnoException) => (res.headersSent ? res.destroy() : reject(err)));
      upstream.end(body);
    });
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        if ((size += chunk.length) > MAX_BODY) return void res.writeHead(413).end();
        chunks.push(chunk);
      }
      const first = turn++;
      for (let i = 0; i < backends.length; i++) {
        const port = backends[(first + i) % backends.length] as number;
        try {
          await forward(port, req, Buffer.concat(chunks), res);
          stats.served[port] = (stats.served[port] ?? 0) + 1;
          return;
        } catch (err) {
          // Sent again even after a reset: replaying a token request only issues one more token.
          const key = `${port} ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
          stats.connectionErrors[key] = (stats.connectionErrors[key] ?? 0) + 1;
        }
      }
      stats.failed++;
      res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable","error_description":"no backend answered"}');
    })();
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setBackends(ports) { backends = [...ports]; },
    stats: () => structuredClone(stats),
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      agent.destroy();
    }),
  };
}
