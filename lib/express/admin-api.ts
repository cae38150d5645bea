/**
 * `adminApi()`: a router of JSON endpoints to provision clients, their secrets and the signing keys,
 * protected by this package's own guard, so that a deployment pipeline provisions with a client
 * credentials token of its own instead of a shell on the database host.
 */
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import type { ClientUpdate } from '../core/client.js';
import { keyStates } from '../core/key-set.js';
import { isSigningAlgorithm, SIGNING_ALGORITHMS } from '../core/keys.js';
import { checkOptions, functionOption, InvalidOptionError } from '../core/options.js';
import type { IssuerStore } from '../core/store.js';
import { checkRequiredScopes } from '../core/scope.js';
import { ClientExistsError, ClientNotFoundError } from '../errors.js';
import {
  AdminApiError, adminErrorHandler, fields, invalidRequest, notFound, pathParam, readJsonBody,
} from './admin-input.js';
import { ADMIN_OPENAPI } from './admin-openapi.js';
import type { ResourceServer } from './resource-server.js';

/** Options of {@link adminApi}. */
export interface AdminApiOptions {
  /** The issuer's store. */
  store: IssuerStore;
  /** The guard that checks callers' tokens: required, the API refuses to start without one. */
  resourceServer: ResourceServer;
  /** Scope required to read (list, show). Default `m2m:read`; `adminScope` also reads. */
  readScope?: string;
  /** Scope required to change anything. Default `m2m:admin`. */
  adminScope?: string;
  /** Told of store failures (answered 503), for the host's logs. */
  onError?: (error: unknown) => void;
}

const REGISTRATION_FIELDS = [
  'clientId', 'name', 'scopes', 'defaultScopes', 'audiences', 'defaultAudience', 'tokenLifetime', 'enabled', 'claims',
  'tokenEndpointAuthMethod', 'jwks', 'jwksUri',
];
const UPDATE_FIELDS = ['name', 'scopes', 'defaultScopes', 'audiences', 'defaultAudience', 'tokenLifetime', 'enabled', 'claims', 'jwks', 'jwksUri'];

type Handler = (req: Request, res: Response) => Promise<void>;
/** An async route whose errors reach the admin error handler. */
const route = (handler: Handler): RequestHandler => (req, res, next) => { handler(req, res).catch(next); };

/** A number of seconds from a body field, or undefined when absent. */
function secondsField(body: Record<string, unknown>, name: string, max: number): number | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalidRequest(`${name} must be a whole number of seconds from 0 to ${max}`);
  }
  return value;
}

/** The store as the caller of `req`: its changes recorded as made by `admin-api:<client id>`. */
type StoreFor = (req: Request) => IssuerStore;

function clientRoutes(router: Router, storeFor: StoreFor, read: RequestHandler, write: RequestHandler): void {
  const found = async (store: IssuerStore, clientId: string) => {
    const client = await store.clients.get(clientId);
    if (client === undefined) throw notFound(`no client ${JSON.stringify(clientId)}`);
    return client;
  };
  router.get('/clients', read, route(async (req, res) => { res.json({ clients: await storeFor(req).clients.list() }); }));
  router.post('/clients', write, readJsonBody, route(async (req, res) => {
    const body = fields(req, REGISTRATION_FIELDS);
    try {
      const created = await storeFor(req).clients.create(body as never);
      res.status(201).location(`${req.baseUrl}/clients/${encodeURIComponent(created.client.clientId)}`).set('Cache-Control', 'no-store').json(created);
    } catch (err) {
      if (err instanceof ClientExistsError) throw new AdminApiError(409, 'conflict', err.message);
      throw err;
    }
  }));
  router.get('/clients/:clientId', read, route(async (req, res) => {
    const store = storeFor(req);
    const client = await found(store, pathParam(req, 'clientId'));
    res.json({ client, secrets: await store.clients.listSecrets(client.clientId) });
  }));
  const update = (req: Request, change: ClientUpdate) => storeFor(req).clients.update(pathParam(req, 'clientId'), change).catch((err: unknown) => {
    throw err instanceof ClientNotFoundError ? notFound(err.message) : err;
  });
  router.patch('/clients/:clientId', write, readJsonBody, route(async (req, res) => {
    res.json({ client: await update(req, fields(req, UPDATE_FIELDS) as ClientUpdate) });
  }));
  router.post('/clients/:clientId/disable', write, route(async (req, res) => { res.json({ client: await update(req, { enabled: false }) }); }));
  router.post('/clients/:clientId/enable', write, route(async (req, res) => { res.json({ client: await update(req, { enabled: true }) }); }));
  router.delete('/clients/:clientId', write, route(async (req, res) => {
    const clientId = pathParam(req, 'clientId');
    if (!(await storeFor(req).clients.delete(clientId))) throw notFound(`no client ${JSON.stringify(clientId)}`);
    res.status(204).end();
  }));
  router.post('/clients/:clientId/secrets', write, readJsonBody, route(async (req, res) => {
    const store = storeFor(req);
    const client = await found(store, pathParam(req, 'clientId'));
    const gracePeriod = secondsField(fields(req, ['gracePeriod']), 'gracePeriod', 30 * 86_400);
    const issued = await store.clients.rotateSecret(client.clientId, gracePeriod === undefined ? {} : { gracePeriod });
    res.status(201).set('Cache-Control', 'no-store').json(issued);
  }));
  router.delete('/clients/:clientId/secrets/:secretId', write, route(async (req, res) => {
    const store = storeFor(req);
    const client = await found(store, pathParam(req, 'clientId'));
    const secretId = pathParam(req, 'secretId');
    if (!(await store.clients.revokeSecret(client.clientId, secretId))) throw notFound(`no secret ${JSON.stringify(secretId)}`);
    res.status(204).end();
  }));
}

function keyRoutes(router: Router, storeFor: StoreFor, read: RequestHandler, write: RequestHandler): void {
  /** A key without its private part, with its state now. */
  const listed = async (store: IssuerStore) => {
    const keys = await store.keys.list();
    const states = keyStates(keys, Date.now());
    return keys.map((k) => ({
      kid: k.kid, alg: k.alg, state: states.get(k.kid), createdAt: k.createdAt, activatesAt: k.activatesAt, retention: k.retention, publicJwk: k.publicJwk,
    }));
  };
  router.get('/keys', read, route(async (req, res) => { res.json({ keys: await listed(storeFor(req)) }); }));
  router.post('/keys/rotate', write, readJsonBody, route(async (req, res) => {
    const body = fields(req, ['alg', 'activateAfter']);
    if (body.alg !== undefined && !isSigningAlgorithm(body.alg)) throw invalidRequest(`alg must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
    const activateAfter = secondsField(body, 'activateAfter', 30 * 86_400);
    const store = storeFor(req);
    const key = await store.keys.rotate({ ...(body.alg !== undefined ? { alg: body.alg } : {}), ...(activateAfter !== undefined ? { activateAfter } : {}) });
    res.status(201).json({ key: (await listed(store)).find((k) => k.kid === key.kid) });
  }));
  router.post('/keys/:kid/revoke', write, route(async (req, res) => {
    const kid = pathParam(req, 'kid');
    if (!(await storeFor(req).keys.revoke(kid))) throw notFound(`no live key ${JSON.stringify(kid)}`);
    res.json({ kid, revoked: true });
  }));
}

/** A query parameter given at most once, or undefined. */
function queryParam(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidRequest(`${name} must be given once`);
  return value;
}

/** `GET /audit?clientId=&since=&after=&limit=`: the audit trail, oldest first. */
function auditRoute(router: Router, store: IssuerStore, read: RequestHandler): void {
  router.get('/audit', read, route(async (req, res) => {
    if (store.audit === undefined) throw notFound('this store keeps no audit trail');
    for (const name of Object.keys(req.query)) {
      if (!['clientId', 'since', 'after', 'limit'].includes(name)) throw invalidRequest(`unknown query parameter ${JSON.stringify(name.slice(0, 64))}`);
    }
    const clientId = queryParam(req, 'clientId');
    const since = queryParam(req, 'since');
    const after = queryParam(req, 'after');
    const limit = queryParam(req, 'limit');
    const whole = (value: string, name: string) => {
      if (!/^\d{1,15}$/.test(value)) throw invalidRequest(`${name} must be a whole number`);
      return Number(value);
    };
    const sinceDate = since === undefined ? undefined : new Date(since);
    if (sinceDate !== undefined && (Number.isNaN(sinceDate.getTime()) || since!.length > 40)) throw invalidRequest('since must be an ISO 8601 time');
    const entries = await store.audit.list({
      ...(clientId !== undefined ? { clientId } : {}), ...(sinceDate !== undefined ? { since: sinceDate } : {}),
      ...(after !== undefined ? { after: whole(after, 'after') } : {}), ...(limit !== undefined ? { limit: whole(limit, 'limit') } : {}),
    });
    res.json({ entries });
  }));
}

/**
 * A router of JSON endpoints for clients (create, list, show, update, disable, enable, delete),
 * their secrets (rotate with a grace period, revoke), signing keys (list, rotate, revoke) and the
 * audit trail (changes made here are recorded as `admin-api:<caller's client id>`), with an
 * OpenAPI 3.1 document at `/openapi.json`. Every endpoint requires a Bearer token checked
 * by `resourceServer`: `readScope` (or `adminScope`) to read, `adminScope` to change. A new secret
 * is in the response that creates it and nowhere else.
 *
 * @throws {@link InvalidOptionError} without a `resourceServer` or `store`, or for a bad option.
 * @example
 * ```ts
 * const rs = createResourceServer({ issuer, audience: 'https://auth.internal/admin' });
 * app.use('/admin', adminApi({ store, resourceServer: rs }));
 * ```
 */
export function adminApi(options: AdminApiOptions): Router {
  checkOptions<AdminApiOptions>(options, 'adminApi()', ['store', 'resourceServer', 'readScope', 'adminScope', 'onError']);
  const { store, resourceServer } = options;
  if (store === undefined || typeof store !== 'object' || typeof store.clients?.get !== 'function') {
    throw new InvalidOptionError('store', 'adminApi() needs the issuer store');
  }
  if (resourceServer === undefined || typeof resourceServer?.requireScope !== 'function') {
    throw new InvalidOptionError('resourceServer', 'adminApi() needs a resourceServer: it never runs unprotected');
  }
  const [readScope] = checkRequiredScopes(options.readScope ?? 'm2m:read', 'readScope');
  const [adminScope] = checkRequiredScopes(options.adminScope ?? 'm2m:admin', 'adminScope');
  const onError = functionOption(options.onError, 'onError', () => {});
  const read = resourceServer.requireScope([readScope as string, adminScope as string], { match: 'any' });
  const write = resourceServer.requireScope(adminScope as string);
  const router = express.Router();
  const storeFor: StoreFor = (req) => {
    const clientId = (req as Request & { auth?: { clientId?: string } }).auth?.clientId;
    return store.withActor?.(`admin-api:${clientId ?? 'unknown'}`) ?? store;
  };
  router.get('/openapi.json', (_req, res) => { res.json(ADMIN_OPENAPI); });
  clientRoutes(router, storeFor, read, write);
  keyRoutes(router, storeFor, read, write);
  auditRoute(router, store, read);
  router.use((_req, _res, next) => { next(notFound('no such endpoint')); });
  router.use(adminErrorHandler(onError));
  return router;
}
