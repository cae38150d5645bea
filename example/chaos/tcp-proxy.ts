/**
 * A TCP proxy the chaos run puts between the issuers and PostgreSQL, so that it can cut the
 * database: `cut()` resets every live connection and refuses new ones (reset as soon as they are
 * accepted) until `restore()`. Bytes are piped as they come; the proxy knows nothing of the
 * protocol. Listens on 127.0.0.1 only.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** What the proxy did since it started. */
export interface TcpProxyStats {
  /** Connections passed on to the target. */
  accepted: number;
  /** Connections reset on arrival while cut. */
  refused: number;
  /** Live connections reset by `cut()`. */
  severed: number;
  /** Connections to the target that failed (target down). */
  upstreamErrors: number;
}

/** A running proxy. */
export interface TcpProxy {
  /** The port on 127.0.0.1 that leads to the target. */
  port: number;
  /** Whether connections are being cut. */
  readonly isCut: boolean;
  /** Resets every live connection, and every new one until {@link TcpProxy.restore}. */
  cut(): void;
  /** Lets new connections through again. */
  restore(): void;
  stats(): TcpProxyStats;
  close(): Promise<void>;
}

/** Starts a proxy on a free port of 127.0.0.1 to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const stats: TcpProxyStats = { accepted: 0, refused: 0, severed: 0, upstreamErrors: 0 };
  const live = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let isCut = false;

  const server = net.createServer((client) => {
    if (isCut) {
      stats.refused++;
      client.resetAndDestroy();
      return;
    }
    stats.accepted++;
    const upstream = net.connect(target);
    const pair = { client, upstream };
    live.add(pair);
    const end = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    upstream.once('error', () => { stats.upstreamErrors++; end(); });
    client.once('error', end);
    upstream.once('close', end);
    client.once('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject).listen(0, '127.0.0.1', resolve); });

  return {
    port: (server.address() as AddressInfo).port,
    get isCut() { return isCut; },
    cut() {
      isCut = true;
      for (const pair of [...live]) {
        stats.severed++;
        live.delete(pair);
        // A reset, as a failed network path or a crashed server would look to the driver.
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
    restore() { isCut = false; },
    stats: () => ({ ...stats }),
    close: () => new Promise((resolve) => {
      for (const { client, upstream } of live) {
        client.destroy();
        upstream.destroy();
      }
      live.clear();
      server.close(() => resolve());
    }),
  };
}
