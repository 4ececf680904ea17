// The HTTP side of `kmemu view`: the page and the JSON step API, on loopback only.
//
// The page is a fixed table of routes (the client names no file); the API answers ViewAnswer
// documents (state.ts). Every request must name this server in its Host header (a page from
// another site that rebinds its DNS name to 127.0.0.1 sends its own name there) and a POST that
// carries an Origin must come from this server's page, so no other page can drive the replay.
// Steps run one at a time, in the order they arrived.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, UserError } from '../../emu/index.js';
import type { ViewBackend } from './session.js';
import type { ViewAnswer } from './state.js';

export type { ViewBackend };

/** The built page (make build writes it to dist/view/). */
export interface ViewAssets {
  'index.html': Buffer;
  'app.js': Buffer;
  'app.css': Buffer;
}

export const ASSET_NAMES = ['index.html', 'app.js', 'app.css'] as const;

/** The repository's root: the first directory above this module with a package.json (from tools/view/ or dist/tools/view/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      readFileSync(join(dir, 'package.json'));
      return dir;
    } catch {
      dir = dirname(dir);
    }
  }
  return dir;
}

/** Where make build puts the page. */
export function defaultAssetDir(): string {
  return join(packageRoot(), 'dist', 'view');
}

/** Reads the built page into memory; a UserError naming the missing file when it is not built. */
export function loadViewAssets(dir = defaultAssetDir()): ViewAssets {
  const read = (name: (typeof ASSET_NAMES)[number]): Buffer => {
    try {
      return readFileSync(join(dir, name));
    } catch {
      throw new UserError(`view: the viewer's page is not built (${join(dir, name)} is missing): run make build`);
    }
  };
  return { 'index.html': read('index.html'), 'app.js': read('app.js'), 'app.css': read('app.css') };
}

/** Largest JSON body the API reads, in bytes. */
export const BODY_LIMIT = 4096;

/** Largest n for step and back: more than any trace we read, small enough to stay an exact integer. */
const MAX_STEPS = 1_000_000_000;

/**
 * The page loads its own script and style and calls its own API; nothing remote, nothing inline.
 * 'unsafe-eval': vega compiles the chart's expressions with Function() (vega-interpreter, which
 * would avoid it, is not a dependency).
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': CSP,
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
} as const;

const PAGES: Readonly<Record<string, { asset: keyof ViewAssets; type: string }>> = {
  '/': { asset: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { asset: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { asset: 'app.css', type: 'text/css; charset=utf-8' },
};

type Body = Record<string, unknown>;

/** A request the client got wrong: its status and one line saying why. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function integerField(body: Body, field: string, min: number, max: number): number {
  const v = body[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RequestError(400, `"${field}": expected an integer from ${min} to ${max}, got ${JSON.stringify(v) ?? 'nothing'}`);
  }
  return v;
}

function onlyFields(body: Body, fields: readonly string[]): void {
  const extra = Object.keys(body).filter((k) => !fields.includes(k));
  if (extra.length > 0) throw new RequestError(400, `unexpected field ${JSON.stringify(extra[0])} (this call takes ${fields.length === 0 ? 'no fields' : fields.map((f) => `"${f}"`).join(', ')})`);
}

/** The API's POST calls: the body's fields, checked, and the backend call they make. */
const CALLS: Readonly<Record<string, (b: ViewBackend, body: Body) => Promise<ViewAnswer>>> = {
  '/api/step': (b, body) => (onlyFields(body, ['n']), b.step(integerField(body, 'n', 1, MAX_STEPS))),
  '/api/back': (b, body) => (onlyFields(body, ['n']), b.back(integerField(body, 'n', 1, MAX_STEPS))),
  '/api/step-cpu': (b, body) => (onlyFields(body, ['cpu']), b.stepCpu(integerField(body, 'cpu', 0, 1023))),
  '/api/step-path': (b, body) => {
    onlyFields(body, ['path']);
    const path = body['path'];
    if (typeof path !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(path)) {
      throw new RequestError(400, `"path": expected a path label such as "uma.alloc.depot", got ${JSON.stringify(path) ?? 'nothing'}`);
    }
    return b.stepPath(path);
  },
  '/api/run': (b, body) => (onlyFields(body, []), b.runToEnd()),
  '/api/step-lock': (b, body) => (onlyFields(body, []), b.stepLock()),
  '/api/focus': async (b, body) => {
    onlyFields(body, ['zone']);
    const zone = body['zone'];
    if (zone !== null && (typeof zone !== 'string' || zone.length === 0 || zone.length > 64 || [...zone].some((c) => c < ' '))) {
      throw new RequestError(400, `"zone": expected a zone's name or null, got ${JSON.stringify(zone) ?? 'nothing'}`);
    }
    return b.focus(zone);
  },
  '/api/goto': (b, body) => (onlyFields(body, ['position']), b.goto(integerField(body, 'position', 0, MAX_STEPS))),
};

export interface ViewServer {
  url: string;
  /** The address it is bound to, as the socket reports it: 127.0.0.1. */
  address: string;
  port: number;
  close(): Promise<void>;
}

export interface ViewServerOptions {
  /** 0: an ephemeral port. */
  port: number;
  /** The page; default: loadViewAssets() (dist/view/). */
  assets?: ViewAssets;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, doc: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(doc));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > BODY_LIMIT) {
      reject(new RequestError(413, `the request body is over ${BODY_LIMIT} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > BODY_LIMIT) {
        // The rest is read and dropped, so that the answer reaches the client.
        req.off('data', onData);
        req.resume();
        reject(new RequestError(413, `the request body is over ${BODY_LIMIT} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text: string): Body {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RequestError(400, 'the request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RequestError(400, 'the request body must be a JSON object');
  return v as Body;
}

/** Starts the viewer's server on 127.0.0.1:port. */
export async function startViewServer(backend: ViewBackend, options: ViewServerOptions): Promise<ViewServer> {
  const assets = options.assets ?? loadViewAssets();
  let port = options.port;
  let queue: Promise<unknown> = Promise.resolve();
  /** Runs calls one at a time, in arrival order; a failed call does not stop the next. */
  const serialized = <T>(f: () => Promise<T>): Promise<T> => {
    const run = queue.then(f, f);
    queue = run.catch(() => undefined);
    return run;
  };

  const hosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`, ...(port === 80 ? ['127.0.0.1', 'localhost'] : [])]);
  const origins = () => new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`, ...(port === 80 ? ['http://127.0.0.1', 'http://localhost'] : [])]);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!hosts().has(host)) {
      send(res, 403, 'text/plain; charset=utf-8', `forbidden: Host ${JSON.stringify(req.headers.host ?? '')} is not this server (use http://127.0.0.1:${port}/)\n`);
      return;
    }
    // The raw path, undecoded: "/%2e%2e/" and "/../x" name no route (the URL parser would fold them).
    const path = (req.url ?? '').split('?')[0] ?? '';
    const page = PAGES[path];
    if (page !== undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, 'text/plain; charset=utf-8', `method ${req.method ?? ''} not allowed on ${path}\n`, { Allow: 'GET, HEAD' });
        return;
      }
      send(res, 200, page.type, assets[page.asset]);
      return;
    }
    if (path === '/api/state') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed on ${path} (GET)` });
        return;
      }
      // Behind the queue, so a state read never sees a step half done.
      sendJson(res, 200, await serialized(async () => backend.answer()));
      return;
    }
    const call = CALLS[path];
    if (call === undefined) {
      send(res, 404, 'text/plain; charset=utf-8', `not found: ${path}\n`);
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed on ${path} (POST)` });
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !origins().has(origin.toLowerCase())) {
      sendJson(res, 403, { error: `forbidden: Origin ${JSON.stringify(origin)} is not this server's page` });
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      sendJson(res, 415, { error: `the request body must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? 'none')}` });
      return;
    }
    const body = parseBody(await readBody(req));
    sendJson(res, 200, await serialized(() => call(backend, body)));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof RequestError && err.status === 413) res.setHeader('Connection', 'close');
      if (err instanceof RequestError) sendJson(res, err.status, { error: err.message });
      else if (err instanceof UsageError) sendJson(res, 400, { error: err.message });
      else if (err instanceof UserError) sendJson(res, 422, { error: err.message });
      else sendJson(res, 500, { error: `internal error: ${(err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')}` });
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new UsageError(`--port ${options.port}: the port is in use on 127.0.0.1`));
      else if (err.code === 'EACCES') reject(new UsageError(`--port ${options.port}: not allowed to listen on it (ports below 1024 need root)`));
      else reject(err);
    });
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the view server has no TCP address');
  port = address.port;

  return {
    url: `http://127.0.0.1:${port}/`,
    address: address.address,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
