// kmemu view in a real Chromium (playwright-core, Debian's chromium): the built CLI serves a
// bundled trace, the page steps it, and what the page shows is what the step API answers (and,
// at the end, what `kmemu replay --json` reports). Where Chromium is missing the tests are
// skipped with a banner saying so (make browser-deps installs it as root).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ViewAnswer, ViewState } from '../../tools/view/state.js';
import { kmemu, ROOT } from '../tools/built-cli.js';
import { startView, VIEW_TRACE, type RunningView } from './start-view.js';

/** Chromium: $CHROMIUM (when set, only it), Debian's /usr/bin/chromium, or chromium / chromium-browser in PATH. */
function findChromium(): string | undefined {
  const env = process.env['CHROMIUM'];
  if (env !== undefined && env !== '') return existsSync(env) ? env : undefined;
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (found !== '') return found;
    } catch {
      // not in PATH
    }
  }
  return undefined;
}

const CHROMIUM = findChromium();
if (CHROMIUM === undefined) process.stderr.write('\n*** SKIPPED: Chromium not found (apt-get install --no-install-recommends chromium) ***\n\n');

const SHOTS = join(ROOT, 'dist', 'view-test');
const RUN_ARGS = [VIEW_TRACE, '--cpus', '2', '--allocator', 'uma'];
const fmt = (n: number) => n.toLocaleString('en-US');

async function apiState(view: RunningView): Promise<ViewAnswer> {
  const res = await fetch(`${view.url}api/state`);
  expect(res.status).toBe(200);
  return (await res.json()) as ViewAnswer;
}

const text = async (page: Page, testid: string) => (await page.getByTestId(testid).textContent())?.trim() ?? '';

/** Every data-testid's text but the chart's and the timeline's (drawn asynchronously / as SVG). */
async function testidTexts(page: Page): Promise<Record<string, string>> {
  return page.evaluate(`Object.fromEntries([...document.querySelectorAll('[data-testid]')]
    .filter((e) => !/path-chart|timeline|busy/.test(e.dataset.testid))
    .map((e) => [e.dataset.testid, e.textContent]))`);
}

async function waitPosition(page: Page, testid: string, n: number): Promise<void> {
  await page.getByTestId(testid).filter({ hasText: new RegExp(`^${n}$`) }).waitFor({ timeout: 30_000 });
  await page.getByTestId('busy').waitFor({ state: 'detached', timeout: 30_000 });
}

/** The page shows `s` (prefix: "" or "side-N-"): CPUs, their per-CPU caches, zones, lines, the last event. */
async function expectPageShows(page: Page, s: ViewState, p: string): Promise<void> {
  for (const cpu of s.cpus) {
    expect(await text(page, `${p}cpu-${cpu.id}-clock`)).toBe(fmt(cpu.clock));
    expect(await text(page, `${p}cpu-${cpu.id}-status`)).toBe(cpu.status);
    expect(await text(page, `${p}cpu-${cpu.id}-events`)).toBe(fmt(cpu.events));
  }
  const zoneName = await text(page, `${p}cpu-0-cache-zone`);
  expect(zoneName, "the CPU panels show the state's focus").toBe(s.focus);
  const zone = s.zones.find((z) => z.name === zoneName);
  expect(zone, `the zone the CPU panels show, ${zoneName}, is in the state`).toBeDefined();
  for (const c of zone!.pcpu) {
    if (zone!.allocator === 'uma') {
      expect(await text(page, `${p}cpu-${c.cpu}-alloc-count`)).toBe(c.alloc == null ? 'none' : String(c.alloc.count));
      expect(await text(page, `${p}cpu-${c.cpu}-free-count`)).toBe(c.free == null ? 'none' : String(c.free.count));
    } else {
      expect(await text(page, `${p}cpu-${c.cpu}-list-count`)).toBe(String(c.list?.count));
    }
  }
  const id = `${p}zone-${zone!.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  expect(await text(page, `${id}-lock-holder`)).toBe(zone!.lock.holder === null ? 'none' : `CPU ${zone!.lock.holder}`);
  expect(await text(page, `${id}-used`)).toBe(fmt(zone!.used));
  expect(await text(page, `${id}-free`)).toBe(fmt(zone!.free));
  if (zone!.depot !== undefined) expect(await text(page, `${id}-depot-full`)).toBe(String(zone!.depot.full.length));
  if (zone!.slabs !== undefined) expect(await text(page, `${id}-slabs-part`)).toBe(String(zone!.slabs.part.length));
  // Every line the state lists (the focused zone's, then others the event touched), in every CPU's L1D and L2.
  expect(s.lines.filter((l) => l.zone === zone!.name).length).toBeGreaterThan(0);
  expect(await page.getByTestId(`${p}lines`).locator('tbody tr').count()).toBe(s.lines.length);
  for (const l of s.lines) {
    for (let c = 0; c < s.run.cpus; c++) {
      expect(await text(page, `${p}line-${l.line}-cpu-${c}-l1`), `${l.what} in CPU ${c}'s L1D`).toBe(l.l1[c]);
      expect(await text(page, `${p}line-${l.line}-cpu-${c}-l2`), `${l.what} in CPU ${c}'s L2`).toBe(l.l2[c]);
    }
  }
  expect(await text(page, `${p}last-text`)).toBe(s.last?.text.trim());
}

describe.skipIf(CHROMIUM === undefined)('kmemu view in Chromium', () => {
  let browser: Browser;
  let view: RunningView | undefined;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    if (view !== undefined) {
      const { code } = await view.stop('SIGINT');
      expect(code, `kmemu view's exit status after SIGINT; stderr: ${view.stderr()}`).toBe(0);
      view = undefined;
    }
  });

  async function open(args: readonly string[]): Promise<Page> {
    view = await startView(args);
    problems.length = 0;
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    // A CSP violation, a failed request or an exception on the page fails the test.
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.goto(view.url);
    return page;
  }

  it('shows the state the step API answers, and steps back and forward to the same page', async () => {
    const page = await open(RUN_ARGS);
    await waitPosition(page, 'position', 0);
    await page.getByTestId('n-input').fill('10');
    await page.getByTestId('step-n').click();
    await waitPosition(page, 'position', 10);
    const answer = await apiState(view!);
    expect(answer.mode).toBe('single');
    const s = (answer as { state: ViewState }).state;
    expect(s.position).toBe(10);
    await expectPageShows(page, s, '');
    const at10 = await testidTexts(page);
    const shot = join(SHOTS, 'screenshot.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`kmemu view screenshot: ${shot}\n`);

    // Back 3 by the button, forward 1 by the key, back 1 by the key, then forward 3 by the API's step.
    for (let i = 0; i < 3; i++) {
      await page.getByTestId('back-1').click();
      await waitPosition(page, 'position', 9 - i);
    }
    await page.keyboard.press('ArrowRight');
    await waitPosition(page, 'position', 8);
    await page.keyboard.press('ArrowLeft');
    await waitPosition(page, 'position', 7);
    await expectPageShows(page, ((await apiState(view!)) as { state: ViewState }).state, '');
    await page.getByTestId('n-input').fill('3');
    await page.getByTestId('step-n').click();
    await waitPosition(page, 'position', 10);
    await page.getByTestId('n-input').fill('10');
    expect(await testidTexts(page)).toEqual(at10);
    // shift+← goes back N (10) events; → and ← from there and back to 10 again.
    await page.getByTestId('position').click();
    await page.keyboard.press('Shift+ArrowLeft');
    await waitPosition(page, 'position', 0);
    expect(await text(page, 'last-text')).toMatch(/^Nothing has run yet/);
    await page.keyboard.press('Shift+ArrowRight');
    await waitPosition(page, 'position', 10);
    expect(await testidTexts(page)).toEqual(at10);

    // To the end: the paths' ops and cycles are those of kmemu replay --json.
    await page.getByTestId('run').click();
    await waitPosition(page, 'position', s.total);
    const end = ((await apiState(view!)) as { state: ViewState }).state;
    await expectPageShows(page, end, '');
    const replay = kmemu(['replay', ...RUN_ARGS, '--json']);
    expect(replay.status, replay.stderr).toBe(0);
    const report = JSON.parse(replay.stdout) as { totals: { events: number }; paths: { path: string; ops: number; cycles: { total: number } }[] };
    expect(end.total).toBe(report.totals.events);
    const byPath = Object.fromEntries(end.paths.map((p) => [p.path, [p.ops, p.cycles]]));
    for (const p of report.paths) expect(byPath[p.path], p.path).toEqual([p.ops, p.cycles.total]);
    await page.getByTestId('path-chart').locator('svg').waitFor();
    await page.screenshot({ path: join(SHOTS, 'screenshot-end.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('vm_zone: the per-CPU free lists and the zone list; --locked shows no per-CPU cache', async () => {
    for (const locked of [false, true]) {
      const page = await open([VIEW_TRACE, '--cpus', '2', '--allocator', 'vmzone', '--machine', 'coursework', ...(locked ? ['--locked'] : [])]);
      await waitPosition(page, 'position', 0);
      await page.getByTestId('n-input').fill('40');
      await page.getByTestId('step-n').click();
      await waitPosition(page, 'position', 40);
      const s = ((await apiState(view!)) as { state: ViewState }).state;
      expect(s.run.pcpu).toBe(!locked);
      await expectPageShows(page, s, '');
      const zone = s.zones.find((z) => z.name === 'kmalloc-64')!;
      expect(await text(page, 'cpu-0-cache-zone')).toBe('kmalloc-64');
      expect(await text(page, 'zone-kmalloc-64-locked-count')).toBe(String(zone.locked!.count));
      if (locked) {
        expect(zone.pcpu).toEqual([]);
        expect(await text(page, 'cpu-0-no-cache')).toMatch(/^none: per-CPU caching is off/);
      } else {
        // The consumer CPU's frees fill its own list (expectPageShows compared both counts).
        expect(zone.pcpu[1]!.list!.count).toBeGreaterThan(0);
      }
      if (!locked) await page.screenshot({ path: join(SHOTS, 'screenshot-vmzone.png'), fullPage: true });
      expect(problems).toEqual([]);
      await page.close();
      const { code } = await view!.stop('SIGTERM');
      expect(code).toBe(0);
      view = undefined;
    }
  });

  it('stops at the next lock operation inside an event, and pins the zone the panels show', async () => {
    const page = await open([VIEW_TRACE, '--cpus', '2', '--allocator', 'vmzone', '--locked']);
    await waitPosition(page, 'position', 0);
    await page.getByTestId('n-input').fill('12');
    await page.getByTestId('step-n').click();
    await waitPosition(page, 'position', 12);
    await page.getByTestId('step-lock').click();
    await page.getByTestId('lock-text').waitFor();
    const s = ((await apiState(view!)) as { state: ViewState }).state;
    expect(s.lock).not.toBeNull();
    expect(await text(page, 'lock-text')).toBe(`Paused inside event ${s.position + 1}, at a lock operation: ${s.lock!.text}`);
    await expectPageShows(page, s, '');
    const other = s.zones.find((z) => z.name !== s.focus)!;
    await page.getByTestId('zone-select').selectOption(other.name);
    await page.getByTestId('cpu-0-cache-zone').filter({ hasText: other.name }).waitFor();
    const pinned = ((await apiState(view!)) as { state: ViewState }).state;
    expect(pinned.focus).toBe(other.name);
    await expectPageShows(page, pinned, '');
    // Pinned across steps; "" follows the last event again.
    await page.getByTestId('step-1').click();
    await page.getByTestId('lock-text').waitFor({ state: 'detached' });
    expect(await text(page, 'cpu-0-cache-zone')).toBe(other.name);
    await page.getByTestId('zone-select').selectOption('');
    await page.getByTestId('cpu-0-cache-zone').filter({ hasText: s.focus! }).waitFor();
    expect(problems).toEqual([]);
    await page.close();
  });

  it('compare mode shows per-CPU caching on and off side by side, stepped together', async () => {
    const page = await open([...RUN_ARGS, '--compare']);
    await waitPosition(page, 'side-1-position', 0);
    await page.getByTestId('n-input').fill('10');
    await page.getByTestId('step-n').click();
    await waitPosition(page, 'side-0-position', 10);
    await waitPosition(page, 'side-1-position', 10);
    const answer = await apiState(view!);
    expect(answer.mode).toBe('compare');
    const [on, off] = (answer as { states: [ViewState, ViewState] }).states;
    expect([on.run.pcpu, off.run.pcpu]).toEqual([true, false]);
    await expectPageShows(page, on, 'side-0-');
    await expectPageShows(page, off, 'side-1-');
    await page.keyboard.press('ArrowLeft');
    await waitPosition(page, 'side-1-position', 9);
    expect(await text(page, 'side-0-position')).toBe('9');
    const shot = join(SHOTS, 'screenshot-compare.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`kmemu view --compare screenshot: ${shot}\n`);
    expect(problems).toEqual([]);
    await page.close();
  });
});
