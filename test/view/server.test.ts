// The viewer's HTTP server against a fake backend: its fixed routes, loopback only, Host and
// Origin checks (DNS rebinding and cross-site POSTs), body checks, one step at a time, and the
// headers that keep a browser from sniffing, caching or framing. Then the built `kmemu view` on
// a real trace: its address line, SIGINT and SIGTERM (exit 0), its one-line errors, and the
// message when make build has not bundled the page.
import { request as httpRequest } from 'node:http';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT, CSP, loadViewAssets, startViewServer, type ViewAssets, type ViewServer } from '../../tools/view/server.js';
import { kmemu, ROOT } from '../tools/built-cli.js';
import { FAKE_TOTAL, FakeBackend } from './fake-backend.js';
import { startView, VIEW_TRACE } from './start-view.js';

const ASSETS: ViewAssets = {
  'index.html': Buffer.from('<!doctype html><title>kmemu view</title>'),
  'app.js': Buffer.from('console.log(1)'),
  'app.css': Buffer.from('body{}'),
};

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request, so that the test chooses the Host header (fetch may not). */
function call(port: number, method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Host: `127.0.0.1:${port}`, ...(opts.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...opts.headers };
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const post = (port: number, path: string, doc: unknown, headers: Record<string, string> = {}) => call(port, 'POST', path, { body: JSON.stringify(doc), headers });
const positionOf = (r: Reply) => (JSON.parse(r.body) as { state: { position: number } }).state.position;

describe('startViewServer()', () => {
  let backend: FakeBackend;
  let server: ViewServer;

  beforeAll(async () => {
    backend = new FakeBackend();
    server = await startViewServer(backend, { port: 0, assets: ASSETS });
  });
  afterAll(async () => {
    await server.close();
  });

  it('listens on 127.0.0.1 only, on an ephemeral port, and says so in its url', () => {
    expect(server.address).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
  });

  it('serves the page from its fixed table of routes, with the safety headers', async () => {
    for (const [path, type, body] of [['/', 'text/html', ASSETS['index.html']], ['/app.js', 'text/javascript', ASSETS['app.js']], ['/app.css', 'text/css', ASSETS['app.css']]] as const) {
      const r = await call(server.port, 'GET', path);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type']).toContain(type);
      expect(r.body).toBe(body.toString());
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['content-security-policy']).toBe(CSP);
    }
    expect((await call(server.port, 'GET', '/?x=1')).status).toBe(200);
  });

  it('answers 404 to every path outside the table, traversals included', async () => {
    for (const path of ['/../package.json', '/%2e%2e/', '/%2e%2e/package.json', '/dist/view/app.js', '/index.html', '/app.js/', '//app.js', '/app.js%00', '/api', '/api/', '/API/STATE', '/package.json']) {
      const r = await call(server.port, 'GET', path);
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain('"name": "kmemu"');
    }
  });

  it('refuses (403) a Host header that is not this server, as a DNS-rebinding page sends', async () => {
    for (const host of ['evil.example:' + server.port, `127.0.0.1:${server.port + 1}`, '127.0.0.1', `localhost.evil.example:${server.port}`, '']) {
      const r = await call(server.port, 'GET', '/api/state', { headers: { Host: host } });
      expect(r.status, host).toBe(403);
      expect(r.body.trim().split('\n')).toHaveLength(1);
    }
    expect((await call(server.port, 'GET', '/', { headers: { Host: `localhost:${server.port}` } })).status).toBe(200);
  });

  it('refuses (403) a POST whose Origin is another site, and takes its own', async () => {
    const before = backend.position;
    for (const origin of ['http://evil.example', `http://127.0.0.1:${server.port + 1}`, 'null', `https://127.0.0.1:${server.port}`]) {
      const r = await post(server.port, '/api/step', { n: 1 }, { Origin: origin });
      expect(r.status, origin).toBe(403);
      expect(JSON.parse(r.body)).toHaveProperty('error');
    }
    expect(backend.position).toBe(before);
    expect((await post(server.port, '/api/step', { n: 1 }, { Origin: `http://localhost:${server.port}` })).status).toBe(200);
    expect((await post(server.port, '/api/back', { n: 1 }, { Origin: `http://127.0.0.1:${server.port}` })).status).toBe(200);
  });

  it('steps, goes back, steps on a CPU or a path, runs to the end and goes to a position', async () => {
    expect(positionOf(await post(server.port, '/api/goto', { position: 0 }))).toBe(0);
    expect(positionOf(await post(server.port, '/api/step', { n: 5 }))).toBe(5);
    expect(positionOf(await post(server.port, '/api/back', { n: 2 }))).toBe(3);
    expect(positionOf(await post(server.port, '/api/step-cpu', { cpu: 1 }))).toBe(4);
    expect(positionOf(await post(server.port, '/api/step-path', { path: 'uma.alloc.depot' }))).toBe(5);
    expect(positionOf(await call(server.port, 'GET', '/api/state'))).toBe(5);
    expect(positionOf(await post(server.port, '/api/step-lock', {}))).toBe(6);
    expect(positionOf(await post(server.port, '/api/focus', { zone: 'MAP ENTRY' }))).toBe(6);
    expect(backend.focused).toBe('MAP ENTRY');
    await post(server.port, '/api/focus', { zone: null });
    expect(backend.focused).toBe(null);
    expect(positionOf(await post(server.port, '/api/run', {}))).toBe(FAKE_TOTAL);
    expect(positionOf(await call(server.port, 'POST', '/api/run', { headers: { 'Content-Type': 'application/json' } }))).toBe(FAKE_TOTAL);
    const state = await call(server.port, 'GET', '/api/state');
    expect(state.headers['content-type']).toContain('application/json');
    expect(state.headers['cache-control']).toBe('no-store');
  });

  it('answers 400 with one {error} line to bad JSON and bad fields, and the backend\'s UsageError', async () => {
    const bad: [string, string][] = [
      ['/api/step', '{"n":'],
      ['/api/step', '[1]'],
      ['/api/step', '"n"'],
      ['/api/step', '{"n":0}'],
      ['/api/step', '{"n":1.5}'],
      ['/api/step', '{"n":"3"}'],
      ['/api/step', '{}'],
      ['/api/step', '{"n":1,"m":2}'],
      ['/api/back', '{"n":-1}'],
      ['/api/step-cpu', '{"cpu":-1}'],
      ['/api/step-cpu', '{"cpu":7}'],
      ['/api/step-path', '{"path":""}'],
      ['/api/step-path', '{"path":"../etc"}'],
      ['/api/step-path', '{"path":"no.such.path"}'],
      ['/api/goto', '{"position":"x"}'],
      ['/api/run', '{"n":1}'],
      ['/api/step-lock', '{"n":1}'],
      ['/api/focus', '{}'],
      ['/api/focus', '{"zone":""}'],
      ['/api/focus', '{"zone":3}'],
      ['/api/focus', '{"zone":"a\\nb"}'],
    ];
    for (const [path, body] of bad) {
      const r = await call(server.port, 'POST', path, { body });
      expect(r.status, `${path} ${body}`).toBe(400);
      const doc = JSON.parse(r.body) as { error: string };
      expect(Object.keys(doc)).toEqual(['error']);
      expect(doc.error).not.toContain('\n');
    }
    expect(JSON.parse((await post(server.port, '/api/step-cpu', { cpu: 7 })).body)).toEqual({ error: 'cpu 7: the machine has CPUs 0 to 1' });
  });

  it('refuses a body over the limit (413), a body that is not JSON (415) and the wrong method (405)', async () => {
    const big = await call(server.port, 'POST', '/api/step', { body: JSON.stringify({ n: 1, pad: 'x'.repeat(BODY_LIMIT) }) });
    expect(big.status).toBe(413);
    const form = await call(server.port, 'POST', '/api/step', { body: 'n=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    expect((await call(server.port, 'GET', '/api/step')).status).toBe(405);
    expect((await call(server.port, 'POST', '/api/state', { body: '{}' })).status).toBe(405);
    expect((await call(server.port, 'POST', '/', { body: '{}' })).status).toBe(405);
  });

  it('runs concurrent steps one at a time, in the order they came', async () => {
    await post(server.port, '/api/goto', { position: 0 });
    backend.calls = [];
    backend.delayMs = 20;
    const replies = await Promise.all([1, 2, 3, 4, 5].map((n) => post(server.port, '/api/step', { n: 1 }).then((r) => ({ n, r }))));
    backend.delayMs = 0;
    expect(replies.map(({ r }) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(backend.calls).toHaveLength(5);
    for (let i = 1; i < backend.calls.length; i++) expect(backend.calls[i]!.start).toBeGreaterThan(backend.calls[i - 1]!.end);
    expect(replies.map(({ r }) => positionOf(r)).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(backend.position).toBe(5);
  });
});

describe('loadViewAssets()', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kmemu-view-assets-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the built page, and says "run make build" when a file is missing', () => {
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'app.css'), '');
    expect(() => loadViewAssets(dir)).toThrow(/app\.js is missing\): run make build$/);
    writeFileSync(join(dir, 'app.js'), '');
    expect(loadViewAssets(dir)['index.html'].toString()).toBe('<!doctype html>');
  });
});

describe('startViewServer() on a taken port', () => {
  it('fails with a UsageError naming the port', async () => {
    const first = await startViewServer(new FakeBackend(), { port: 0, assets: ASSETS });
    await expect(startViewServer(new FakeBackend(), { port: first.port, assets: ASSETS })).rejects.toThrow(`--port ${first.port}: the port is in use on 127.0.0.1`);
    await first.close();
  });
});

describe('kmemu view (the built CLI)', () => {
  it('prints its address, serves the page and the state, and exits 0 on SIGINT and on SIGTERM', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const view = await startView([VIEW_TRACE, '--cpus', '2', '--allocator', 'uma']);
      const page = await call(view.port, 'GET', '/');
      expect(page.status).toBe(200);
      expect(page.body).toContain('<script type="module" src="/app.js">');
      expect((await call(view.port, 'GET', '/app.js')).body.length).toBeGreaterThan(1000);
      const state = await call(view.port, 'GET', '/api/state');
      expect(positionOf(state)).toBe(0);
      expect(positionOf(await post(view.port, '/api/step', { n: 3 }))).toBe(3);
      const bad = await post(view.port, '/api/step-cpu', { cpu: 9 });
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body)).toEqual({ error: expect.stringContaining('9') });
      expect(await view.stop(signal), view.stderr()).toEqual({ code: 0, signal: null });
      await expect(call(view.port, 'GET', '/')).rejects.toThrow(/ECONNREFUSED/);
    }
  });

  it('fails with one line and status 2 on --locked with --compare, a bad --port, or a trace on stdin', () => {
    for (const [args, why] of [
      [['--locked', '--compare'], /^kmemu: option '--locked' cannot be used with option '--compare'/],
      [['--port', '70000'], /^kmemu: --port: expected a port number from 0 to 65535/],
    ] as const) {
      const r = kmemu(['view', VIEW_TRACE, ...args]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    const stdin = kmemu(['view', '-']);
    expect(stdin.status).toBe(2);
    expect(stdin.stderr).toBe('kmemu: view: the trace is replayed again to step back, so it must be a file, not "-"\n');
  });
});

describe('kmemu view without the built page', () => {
  let copy = '';
  beforeAll(() => {
    // The CLI as make build leaves it, but for dist/view/ (tsc alone, or a deleted bundle).
    copy = mkdtempSync(join(tmpdir(), 'kmemu-view-nobundle-'));
    for (const d of ['emu', 'kernel', 'traces', 'tools']) cpSync(join(ROOT, 'dist', d), join(copy, 'dist', d), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(copy, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  });
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it('fails with one line saying to run make build (status 1)', () => {
    const r = spawnSync(process.execPath, [join(copy, 'dist/tools/cli.js'), 'view', join(ROOT, VIEW_TRACE)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`kmemu: view: the viewer's page is not built (${join(copy, 'dist/view/index.html')} is missing): run make build\n`);
    expect(r.stdout).toBe('');
  });
});
