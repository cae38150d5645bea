import type { CallerFetch, ReplayPolicy } from './options.js';

/** What a 401 replay reports to the client's `token.rejected` event. */
export interface RejectedRequest {
  url: string;
  method: string;
  replayed: boolean;
}

/** What the adapters need from the client. */
interface TokenSource {
  replay: ReplayPolicy;
  /**
   * A valid token other than `rejected` (waiting for a new one when needed). `signal` ends the wait,
   * not the token request, which other callers may share.
   */
  token(rejected?: string, signal?: AbortSignal): Promise<string>;
  invalidate(token: string): Promise<void>;
  rejected(event: RejectedRequest): void;
}

/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const INVALID_TOKEN = /(?:^|[\s,])error\s*=\s*(?:"invalid_token"|invalid_token)(?:$|[\s,])/i;

/**
 * True when a `WWW-Authenticate` value holds a Bearer challenge with `error="invalid_token"`
 * (RFC 6750 §3.1): the token itself was refused, so a new one may succeed. Other 401s (no token
 * seen, a Basic challenge) are not about the token.
 */
export function isInvalidTokenChallenge(value: string | null | undefined): boolean {
  if (typeof value !== 'string' || value.length > 8192) return false;
  return /(?:^|,)\s*bearer(?:\s|$)/i.test(value) && INVALID_TOKEN.test(value);
}

function replayAllowed(policy: ReplayPolicy, method: string): boolean {
  return policy === 'always' || (policy === 'idempotent' && IDEMPOTENT.has(method));
}

/** A body that can be sent a second time as it is. */
function rereadable(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof URLSearchParams
    || body instanceof ArrayBuffer || ArrayBuffer.isView(body) || body instanceof Blob || body instanceof FormData;
}

function describeUrl(input: string | URL | Request, base?: string): string {
  try {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url, base);
    return `${url.origin}${url.pathname}`;
  } catch {
    return '';
  }
}

/** The client's `fetch`: see {@link TokenClient.fetch}. */
export function authorizedFetch(source: TokenSource & {
  fetch: CallerFetch;
  /** The current token when one is usable now, without waiting. */
  current(): string | undefined;
}): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  const send = (input: string | URL | Request, init: RequestInit | undefined, token: string) => {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set('authorization', `Bearer ${token}`);
    return source.fetch(input, { ...init, headers });
  };
  return async function fetchWithToken(input, init) {
    // An aborted request stops waiting for its token too.
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    // The common case costs no promise of our own: a usable token is at hand.
    const token = source.current() ?? await source.token(undefined, signal);
    const res = await send(input, init, token);
    if (res.status !== 401 || !isInvalidTokenChallenge(res.headers.get('www-authenticate'))) return res;
    await source.invalidate(token);
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    // A Request's own body is a stream, read by the first send: it cannot go again.
    const body = init?.body ?? (input instanceof Request ? input.body : undefined);
    const replay = replayAllowed(source.replay, method) && rereadable(body);
    source.rejected({ url: describeUrl(input), method, replayed: replay });
    if (!replay) return res;
    await res.body?.cancel();
    return send(input, init, await source.token(token, signal));
  };
}

/**
 * The parts of an axios instance the adapter uses (axios is an optional peer dependency, so its
 * types are not imported). An `AxiosInstance` from axios 1.x fits.
 */
export interface AxiosLike {
  // axios types its interceptor callbacks as function-typed properties taking and returning its own
  // config type, which cannot be named here without importing axios: `any` is the only parameter
  // and return type that every axios 1.x instance fits.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  interceptors: {
    request: { use(onFulfilled: (config: any) => any): number };
    response: { use(onFulfilled: (response: any) => any, onRejected: (error: any) => any): number };
  };
  request(config: any): Promise<unknown>;
  getUri?(config?: any): string;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

const REPLAYED = 'expressM2mReplayed';

function headerOf(headers: unknown, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const withGet = headers as { get?: (n: string) => unknown };
  if (typeof withGet.get === 'function') {
    const value = withGet.get(name);
    return typeof value === 'string' ? value : undefined;
  }
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name && typeof value === 'string') return value;
  }
  return undefined;
}

function setAuthorization(config: { headers?: unknown }, value: string): void {
  const headers = config.headers as { set?: (n: string, v: string) => unknown } | Record<string, unknown> | undefined;
  if (headers && typeof (headers as { set?: unknown }).set === 'function') {
    (headers as { set: (n: string, v: string) => unknown }).set('Authorization', value);
    return;
  }
  const plain: Record<string, unknown> = { ...(headers as Record<string, unknown> | undefined) };
  for (const key of Object.keys(plain)) if (key.toLowerCase() === 'authorization') delete plain[key];
  plain.Authorization = value;
  config.headers = plain;
}

function axiosBodyRereadable(data: unknown): boolean {
  if (rereadable(data)) return true;
  if (data === null || typeof data !== 'object') return true;
  // Node streams and web streams are read once.
  return typeof (data as { pipe?: unknown }).pipe !== 'function' && !(data instanceof ReadableStream);
}

/** The client's `axios`: see {@link TokenClient.axios}. */
export function attachToAxios<T extends AxiosLike>(instance: T, source: TokenSource): T {
  instance.interceptors.request.use((async (config: { headers?: unknown; signal?: unknown }) => {
    const signal = config.signal instanceof AbortSignal ? config.signal : undefined;
    setAuthorization(config, `Bearer ${await source.token(undefined, signal)}`);
    return config;
  }));

  /** The replayed response, or `undefined` when the 401 is not about the token or may not be replayed. */
  async function afterRefusal(response: AxiosResponseLike | undefined, config: Record<string, unknown> | undefined): Promise<{ replayed: unknown } | undefined> {
    if (response?.status !== 401 || config === undefined || !isInvalidTokenChallenge(headerOf(response.headers, 'www-authenticate'))) {
      return undefined;
    }
    const sent = headerOf(config.headers, 'authorization');
    const token = sent?.startsWith('Bearer ') === true ? sent.slice(7) : undefined;
    if (token !== undefined) await source.invalidate(token);
    const method = String(config.method ?? 'get').toUpperCase();
    const replay = config[REPLAYED] !== true && replayAllowed(source.replay, method) && axiosBodyRereadable(config.data);
    source.rejected({ url: axiosUrl(instance, config), method, replayed: replay });
    if (!replay) return undefined;
    if (token !== undefined) await source.token(token);
    return { replayed: await instance.request({ ...config, [REPLAYED]: true }) };
  }

  instance.interceptors.response.use(
    // A host whose validateStatus accepts 401 sees the refusal here, not as an error.
    (async (response: AxiosResponseLike & { config?: Record<string, unknown> }) => {
      const replay = await afterRefusal(response, response?.config);
      return replay === undefined ? response : replay.replayed;
    }),
    (async (error: { response?: AxiosResponseLike; config?: Record<string, unknown> }) => {
      const replay = await afterRefusal(error?.response, error?.config);
      if (replay === undefined) throw error;
      return replay.replayed;
    }),
  );
  return instance;
}

interface AxiosResponseLike {
  status?: number;
  headers?: unknown;
}

/** The URL as axios sends it (baseURL and url joined its way), without the query. */
function axiosUrl(instance: AxiosLike, config: Record<string, unknown>): string {
  if (typeof instance.getUri === 'function') {
    try {
      return describeUrl(instance.getUri(config));
    } catch {
      // fall through to the plain join
    }
  }
  const base = typeof config.baseURL === 'string' ? config.baseURL.replace(/\/+$/, '') : '';
  const url = String(config.url ?? '');
  return describeUrl(/^[a-z][a-z\d+.-]*:/i.test(url) || base === '' ? url : `${base}/${url.replace(/^\/+/, '')}`);
}
