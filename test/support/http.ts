import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Express } from 'express';

/** A server listening on a loopback port. */
export interface Listening {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Starts `app` on 127.0.0.1 on a free port. */
export function listen(app: Express): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (err?: Error) => {
      if (err) {
        reject(err);
        return;
      }
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        server,
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}

/** A response read whole: status, headers as a plain object, body as text and (if JSON) parsed. */
export interface ReadResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: unknown;
}

/** Sends a request with fetch and reads the whole answer. */
export async function request(url: string, init: RequestInit = {}): Promise<ReadResponse> {
  const res = await fetch(url, init);
  const text = await res.text();
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => { headers[name] = value; });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers, text, json };
}

/** POSTs an application/x-www-form-urlencoded body. */
export function postForm(url: string, form: string | Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<ReadResponse> {
  const body = typeof form === 'string' ? form : new URLSearchParams(
    Object.entries(form).flatMap(([k, v]): [string, string][] => (Array.isArray(v) ? v.map((x): [string, string] => [k, x]) : [[k, v]])),
  ).toString();
  return request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
}

/** `Authorization: Basic` per RFC 6749 §2.3.1: id and secret form-urlencoded, then base64. */
export function basic(clientId: string, clientSecret: string): string {
  const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}
