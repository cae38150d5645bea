import { connect } from 'node:net';

/** What a probe found: a server that answers in its protocol, or why there is none. */
export type Probe = { up: true } | { up: false; reason: string };

/** How long a probe waits for the connection and the answer before giving up. */
export const PROBE_TIMEOUT_MS = 5_000;

/** The first message of each protocol, the default port, and whether a reply is that protocol's. */
const PROTOCOLS = {
  // SSLRequest: length 8, code 80877103. A PostgreSQL server answers one byte, S or N, and logs
  // nothing when the client then leaves.
  postgres: { port: 5432, hello: Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), answers: (r: Buffer) => r[0] === 0x53 || r[0] === 0x4e },
  // PING: +PONG, or an error (-NOAUTH) from a server that wants a password, is Redis either way.
  redis: { port: 6379, hello: Buffer.from('PING\r\n'), answers: (r: Buffer) => r[0] === 0x2b || r[0] === 0x2d },
} as const;

/** A name for why a connection failed, short enough for one line. */
function describeError(err: NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] }): string {
  const code = err.code ?? err.errors?.[0]?.code; // localhost tried on ::1 and 127.0.0.1: an AggregateError
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  return code ?? (err.message || String(err));
}

/**
 * Whether a PostgreSQL or Redis server answers at `url`: connects over TCP, sends the protocol's
 * first message and reads the first byte of the reply, within PROBE_TIMEOUT_MS. No credentials
 * are sent; a server that answers but refuses the URL's user shows in the tests themselves.
 */
export function probe(server: keyof typeof PROTOCOLS, url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Probe> {
  const { port, hello, answers } = PROTOCOLS[server];
  const parsed = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: parsed.hostname.replace(/^\[|\]$/g, '') || 'localhost', port: Number(parsed.port || port) });
    const done = (result: Probe) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done({ up: false, reason: `no answer within ${timeoutMs / 1000} s` }));
    socket.once('connect', () => socket.write(hello));
    socket.once('data', (reply) => done(answers(reply) ? { up: true } : { up: false, reason: `something else answers there, not ${server}` }));
    socket.once('end', () => done({ up: false, reason: 'the connection was closed without an answer' }));
    socket.once('error', (err) => done({ up: false, reason: describeError(err) }));
  });
}
