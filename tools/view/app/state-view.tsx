// One replay's state (ViewState) as panels: the last event, the CPUs and their per-CPU caches,
// the zones, the cache lines under them, the TLBs and the last page walk, the timeline and the
// chart of cycles by path. Every data-testid is prefixed with `p` ("" or "side-N-").

import type { JSX } from 'preact';
import type { BucketView, CpuView, LineView, TlbView, ViewState, WalkView, ZoneView } from '../state.js';
import { PathChart } from './chart.js';
import { fmt, shortAddr, zoneId } from './format.js';
import { pathColour, pathInfo } from './paths.js';
import { Timeline } from './timeline.js';

export interface StateViewProps {
  state: ViewState;
  /** "" or "side-0-" / "side-1-". */
  p: string;
  /** The zone whose per-CPU caches the CPU panels show (the state's focus). */
  zone: string;
  /** The chart's x extent, shared by both sides in compare mode. */
  chartMax: number;
  compare: boolean;
}

/** Zones that have done anything: items, per-CPU traffic, or spinning on their lock. */
export function activeZones(state: ViewState): Set<string> {
  return new Set(state.zones.filter((z) => z.used + z.free > 0 || z.lock.spinCycles > 0 || z.pcpu.some((c) => c.allocs + c.frees > 0)).map((z) => z.name));
}

/** The zone with the most per-CPU traffic, then the most items in use (the first on a tie). */
export function busiestZone(state: ViewState): string {
  let best = state.zones[0]?.name ?? '';
  let most: [number, number] = [-1, -1];
  for (const z of state.zones) {
    const n: [number, number] = [z.pcpu.reduce((a, c) => a + c.allocs + c.frees, 0), z.used];
    if (n[0] > most[0] || (n[0] === most[0] && n[1] > most[1])) [best, most] = [z.name, n];
  }
  return best;
}

function PathChip({ path }: { path: string }) {
  return (
    <span class="chip path" style={{ '--c': pathColour(path) }} title={pathInfo(path)}>
      {path}
    </span>
  );
}

function Slots({ count, entries, label }: { count: number; entries: number; label: string }) {
  if (entries > 64 || entries === 0) {
    const pct = entries === 0 ? 0 : Math.min(100, (100 * count) / entries);
    return (
      <div class="bar" role="img" aria-label={label}>
        <span style={{ width: `${pct}%` }} />
      </div>
    );
  }
  return (
    <div class="slots" role="img" aria-label={label}>
      {Array.from({ length: entries }, (_, i) => (
        <span class={i < count ? 'full' : ''} />
      ))}
    </div>
  );
}

function Items({ items, more, id }: { items: readonly string[]; more: number; id: string }) {
  if (items.length === 0) return null;
  return (
    <details class="items">
      <summary>items</summary>
      <ol data-testid={id}>
        {items.map((a) => (
          <li title={a}>
            <code>{shortAddr(a)}</code>
          </li>
        ))}
        {more > 0 && <li class="muted">and {fmt(more)} more</li>}
      </ol>
    </details>
  );
}

function Bucket({ label, b, id }: { label: string; b: BucketView | null | undefined; id: string }) {
  return (
    <div class="bucket">
      <div class="bucket-head">
        <span>{label}</span>
        <span class="num">
          <b data-testid={`${id}-count`}>{b == null ? 'none' : b.count}</b>
          {b != null && (
            <>
              {' / '}
              <span data-testid={`${id}-entries`}>{b.entries}</span>
            </>
          )}
        </span>
      </div>
      {b != null && <Slots count={b.count} entries={b.entries} label={`${b.count} of ${b.entries} slots hold an item`} />}
      {/* Top of stack last in the state; the page lists it first, as the next zalloc takes it. */}
      {b != null && <Items items={[...b.items].reverse()} more={b.count - b.items.length} id={`${id}-items`} />}
    </div>
  );
}

function FreeList({ label, list, id }: { label: string; list: { count: number; items: string[] } | undefined; id: string }) {
  if (list === undefined) return null;
  return (
    <div class="bucket">
      <div class="bucket-head">
        <span>{label}</span>
        <b class="num" data-testid={`${id}-count`}>
          {list.count}
        </b>
      </div>
      <div class="chain" aria-hidden="true">
        {list.items.slice(0, 8).map(() => (
          <span />
        ))}
        {list.count > 8 && <em>+{fmt(list.count - 8)}</em>}
      </div>
      <Items items={list.items} more={list.count - list.items.length} id={`${id}-items`} />
    </div>
  );
}

function CpuPanel({ cpu, zone, p }: { cpu: CpuView; zone: ZoneView | undefined; p: string }) {
  const t = `${p}cpu-${cpu.id}`;
  const cache = zone?.pcpu.find((c) => c.cpu === cpu.id);
  return (
    <section class={`card cpu status-${cpu.status}`} data-testid={t} aria-label={`CPU ${cpu.id}`}>
      <header>
        <h3>CPU {cpu.id}</h3>
        <span class={`badge status-${cpu.status}`} data-testid={`${t}-status`}>
          {cpu.status}
        </span>
      </header>
      <dl class="kv">
        <dt>clock</dt>
        <dd data-testid={`${t}-clock`}>{fmt(cpu.clock)}</dd>
        <dt>events</dt>
        <dd data-testid={`${t}-events`}>{fmt(cpu.events)}</dd>
        <dt>holds</dt>
        <dd data-testid={`${t}-holds`}>{cpu.holds.length === 0 ? 'no lock' : cpu.holds.join(', ')}</dd>
        <dt>spins on</dt>
        <dd data-testid={`${t}-spins`} class={cpu.spinsOn === null ? '' : 'warn'}>
          {cpu.spinsOn ?? '—'}
        </dd>
      </dl>
      <div class="labels" data-testid={`${t}-labels`} aria-label="path-label stack, outermost first">
        {cpu.labels.length === 0 ? <span class="muted">between events</span> : cpu.labels.map((l) => <PathChip path={l} />)}
      </div>
      {zone !== undefined && cache === undefined && (
        <div class="pcpu">
          <h4>
            per-CPU cache of <span data-testid={`${t}-cache-zone`}>{zone.name}</span>
          </h4>
          <p class="muted small" data-testid={`${t}-no-cache`}>
            none: per-CPU caching is off, every request takes the zone lock
          </p>
        </div>
      )}
      {zone !== undefined && cache !== undefined && (
        <div class="pcpu">
          <h4>
            per-CPU cache of <span data-testid={`${t}-cache-zone`}>{zone.name}</span>
          </h4>
          {zone.allocator === 'uma' ? (
            <>
              <Bucket label="alloc bucket" b={cache.alloc} id={`${t}-alloc`} />
              <Bucket label="free bucket" b={cache.free} id={`${t}-free`} />
            </>
          ) : (
            <FreeList label="free list" list={cache.list} id={`${t}-list`} />
          )}
          {cache.allocs + cache.frees > 0 && (
            <p class="muted small">
              <span data-testid={`${t}-allocs`}>{fmt(cache.allocs)}</span> allocs · <span data-testid={`${t}-frees`}>{fmt(cache.frees)}</span> frees on this CPU
            </p>
          )}
        </div>
      )}
    </section>
  );
}

function BucketStrip({ buckets, id, label }: { buckets: BucketView[]; id: string; label: string }) {
  return (
    <div class="strip">
      <div class="bucket-head">
        <span>{label}</span>
        <b class="num" data-testid={id}>
          {buckets.length}
        </b>
      </div>
      <div class="minis">
        {buckets.slice(0, 24).map((b) => (
          <span class="mini" title={`${b.address}: ${b.count} of ${b.entries}`}>
            <span style={{ height: `${b.entries === 0 ? 0 : (100 * b.count) / b.entries}%` }} />
          </span>
        ))}
        {buckets.length > 24 && <em>+{buckets.length - 24}</em>}
      </div>
    </div>
  );
}

function SlabStrip({ slabs, id, label }: { slabs: { free: number; ipers: number; address: string }[]; id: string; label: string }) {
  return (
    <div class="strip">
      <div class="bucket-head">
        <span>{label}</span>
        <b class="num" data-testid={id}>
          {slabs.length}
        </b>
      </div>
      <div class="minis">
        {slabs.slice(0, 24).map((s) => (
          <span class="mini slab" title={`${s.address}: ${s.free} of ${s.ipers} items free`}>
            <span style={{ height: `${s.ipers === 0 ? 0 : (100 * (s.ipers - s.free)) / s.ipers}%` }} />
          </span>
        ))}
        {slabs.length > 24 && <em>+{slabs.length - 24}</em>}
      </div>
    </div>
  );
}

function ZonePanel({ zone, p }: { zone: ZoneView; p: string }) {
  const t = `${p}zone-${zoneId(zone.name)}`;
  const l = zone.lock;
  const held = l.holder !== null;
  return (
    <section class="card zone" data-testid={t} aria-label={`zone ${zone.name}`}>
      <header>
        <h3>{zone.name}</h3>
        <span class="muted small" title={zone.address}>
          {zone.allocator === 'uma' ? 'UMA' : 'vm_zone'} · {zone.itemSize} B items
        </span>
      </header>
      <div class={`lock ${held ? 'held' : 'free'}`} title={`${l.name} at ${l.address}, line ${l.line}`}>
        <span class={`badge lock-state ${held ? 'held' : 'free'}`}>{held ? 'lock held' : 'lock free'}</span>
        <dl class="kv inline">
          <dt>word</dt>
          <dd>
            <code data-testid={`${t}-lock-word`}>{l.word}</code>
          </dd>
          <dt>holder</dt>
          <dd data-testid={`${t}-lock-holder`}>{l.holder === null ? 'none' : `CPU ${l.holder}`}</dd>
          <dt>waiters</dt>
          <dd data-testid={`${t}-lock-waiters`} class={l.waiters.length > 0 ? 'warn' : ''}>
            {l.waiters.length === 0 ? 'none' : l.waiters.map((w) => `CPU ${w}`).join(', ')}
          </dd>
          <dt>spin</dt>
          <dd>
            <span data-testid={`${t}-lock-spin`}>{fmt(l.spinCycles)}</span> cycles
          </dd>
        </dl>
      </div>
      {zone.depot !== undefined && (
        <div class="group-2">
          <BucketStrip buckets={zone.depot.full} id={`${t}-depot-full`} label="depot: full buckets" />
          <BucketStrip buckets={zone.depot.free} id={`${t}-depot-free`} label="depot: free buckets" />
        </div>
      )}
      {zone.slabs !== undefined && (
        <div class="group-3">
          <SlabStrip slabs={zone.slabs.part} id={`${t}-slabs-part`} label="slabs: partial" />
          <SlabStrip slabs={zone.slabs.full} id={`${t}-slabs-full`} label="full" />
          <SlabStrip slabs={zone.slabs.free} id={`${t}-slabs-free`} label="free" />
        </div>
      )}
      {zone.locked !== undefined && <FreeList label="zone free list (under the lock)" list={zone.locked} id={`${t}-locked`} />}
      <div class="usage">
        <span>
          used <b data-testid={`${t}-used`}>{fmt(zone.used)}</b>
        </span>
        <div class="bar two" role="img" aria-label={`${zone.used} used, ${zone.free} free`}>
          <span style={{ width: `${zone.used + zone.free === 0 ? 0 : (100 * zone.used) / (zone.used + zone.free)}%` }} />
        </div>
        <span>
          free <b data-testid={`${t}-free`}>{fmt(zone.free)}</b>
        </span>
      </div>
    </section>
  );
}

const STATE_NAMES: Record<string, string> = { M: 'Modified', O: 'Owned', E: 'Exclusive', S: 'Shared', I: 'Invalid' };

function LineGrid({ lines, focus, cpus, p }: { lines: LineView[]; focus: string | null; cpus: number; p: string }) {
  const ids = Array.from({ length: cpus }, (_, c) => c);
  return (
    <div class="scroll">
      <table class="lines" data-testid={`${p}lines`}>
        <thead>
          <tr>
            <th rowSpan={2}>line</th>
            <th rowSpan={2}>what</th>
            {ids.map((c) => (
              <th colSpan={2} scope="colgroup">
                CPU {c}
              </th>
            ))}
            <th rowSpan={2}>LLC</th>
            <th rowSpan={2}>last step</th>
          </tr>
          <tr>
            {ids.map(() => (
              <>
                <th scope="col">L1D</th>
                <th scope="col">L2</th>
              </>
            ))}
          </tr>
        </thead>
        <tbody>
          {lines.map((l, i) => {
            const t = `${p}line-${l.line}`;
            // The focused zone's lines come first; the other lines the last event touched after a rule.
            const other = focus !== null && l.zone !== focus;
            const first = other && (i === 0 || lines[i - 1]!.zone === focus);
            return (
              <tr class={`${l.touched ? 'touched' : ''}${other ? ' other' : ''}${first ? ' first-other' : ''}`} data-testid={t}>
                <td>
                  <code>{l.line}</code>
                </td>
                <td class="what">{l.what}</td>
                {ids.map((c) => {
                  const by = l.touchedBy.includes(c) ? ' by' : '';
                  return (
                    <>
                      <td class={`mesi mesi-${l.l1[c] ?? 'I'}${by}`} data-testid={`${t}-cpu-${c}-l1`} title={`CPU ${c} L1D: ${STATE_NAMES[l.l1[c] ?? 'I']}`}>
                        {l.l1[c] ?? 'I'}
                      </td>
                      <td class={`mesi mesi-${l.l2[c] ?? 'I'} l2`} data-testid={`${t}-cpu-${c}-l2`} title={`CPU ${c} L2: ${STATE_NAMES[l.l2[c] ?? 'I']}`}>
                        {l.l2[c] ?? 'I'}
                      </td>
                    </>
                  );
                })}
                <td class={`llc ${l.llc ? (l.llcDirty ? 'dirty' : 'in') : 'out'}`} data-testid={`${t}-llc`}>
                  {l.llc ? (l.llcDirty ? 'dirty' : 'clean') : '—'}
                </td>
                <td class="marks" data-testid={`${t}-marks`}>
                  {l.touched && (
                    <span class="mark touch" title="touched by the last step">
                      {l.written ? 'written' : 'read'} by {l.touchedBy.map((c) => `CPU ${c}`).join(', ')}
                    </span>
                  )}
                  {l.transfers > 0 && (
                    <span class="mark xfer" title="cache-to-cache transfers in the last step">
                      ⇄ {l.transfers}
                    </span>
                  )}
                  {l.invalidations > 0 && (
                    <span class="mark inval" title="copies invalidated in the last step">
                      ✕ {l.invalidations}
                    </span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {lines.length === 0 && <p class="muted">No zone's lines yet.</p>}
      {lines.some((l) => focus !== null && l.zone !== focus) && <p class="muted small">Below the rule: other lines the last event touched (the object, page tables, the kernel's own structures).</p>}
    </div>
  );
}

function TlbPanel({ tlb, p }: { tlb: TlbView[]; p: string }) {
  return (
    <div class="tlbs">
      {tlb.map((t) => (
        <div class="tlb" data-testid={`${p}tlb-cpu-${t.cpu}`}>
          <h4>CPU {t.cpu}</h4>
          {t.entries.length === 0 ? (
            <p class="muted small">no entry for the pages touched</p>
          ) : (
            <table class="small">
              <thead>
                <tr>
                  <th>page</th>
                  <th>size</th>
                  <th>in</th>
                  <th>frame</th>
                  <th>flags</th>
                </tr>
              </thead>
              <tbody>
                {t.entries.map((e) => (
                  <tr>
                    <td title={e.page}>
                      <code>{shortAddr(e.page)}</code>
                    </td>
                    <td>{e.pageSize}</td>
                    <td>{e.level}</td>
                    <td>
                      <code>{e.frame}</code>
                    </td>
                    <td>
                      <code>{e.flags}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      ))}
    </div>
  );
}

const LEVEL_NAMES: Record<number, string> = { 4: 'PML4', 3: 'PDPT', 2: 'PD', 1: 'PT' };

function WalkPanel({ walk, p }: { walk: WalkView | null; p: string }) {
  if (walk === null) return <p class="muted" data-testid={`${p}walk`}>No page walk yet: every translation so far hit in a TLB.</p>;
  return (
    <div data-testid={`${p}walk`}>
      <p>
        CPU {walk.cpu} walked <code>{walk.va}</code>: <b data-testid={`${p}walk-cycles`}>{fmt(walk.cycles)}</b> cycles, {walk.ok ? 'a translation' : 'a fault'}
        {walk.inLastEvent ? ' (in the last event)' : <span class="muted"> (in an earlier event: the last one hit in the TLBs)</span>}
      </p>
      <ol class="walk">
        {walk.steps.map((s) => (
          <li>
            <span class="lvl">{LEVEL_NAMES[s.level] ?? `L${s.level}`}</span> entry at <code>{s.entry}</code> = <code>{s.value}</code>
          </li>
        ))}
      </ol>
    </div>
  );
}

function LockPause({ state, p }: { state: ViewState; p: string }) {
  if (state.lock === null) return null;
  return (
    <p class={`lock-pause ${state.lock.kind}`} data-testid={`${p}lock-text`}>
      <b>Paused inside event {state.position + 1}</b>, at a lock operation: {state.lock.text}
    </p>
  );
}

function LastEvent({ state, p }: { state: ViewState; p: string }) {
  const last = state.last;
  if (last === null) return <p class="muted" data-testid={`${p}last-text`}>Nothing has run yet. Step (→) to run the trace's first event.</p>;
  const c = last.counts;
  const figures: [string, number][] = [
    [last.opCycles === null ? 'cycles' : 'cycles in the operation', c.cycles],
    ['L1D misses', c.l1dMisses],
    ['L2 misses', c.l2Misses],
    ['LLC misses', c.llcMisses],
    ['c2c transfers', c.c2cTransfers],
    ['invalidations', c.invalidations],
    ['TLB misses', c.tlbMisses],
    ['walk cycles', c.walkCycles],
    ['spin cycles', c.spinCycles],
    ['idle cycles', c.idleCycles],
    ['atomics', c.atomics],
  ];
  return (
    <div class="last">
      <p class="last-head">
        <span class="badge" data-testid={`${p}last-cpu`}>
          CPU {last.cpu}
        </span>{' '}
        <span data-testid={`${p}last-what`}>{last.what}</span> <span class="muted small">(trace line {last.traceLine})</span>
      </p>
      <p>
        {last.path === null ? <span class="muted">no allocator path</span> : <PathChip path={last.path} />}
        <span data-testid={`${p}last-path`} hidden>
          {last.path ?? ''}
        </span>
        {last.opCycles !== null && (
          <span>
            {' '}
            <b>{fmt(last.opCycles)}</b> cycles in the allocator,
          </span>
        )}{' '}
        <span class="muted">
          <span data-testid={`${p}last-event-cycles`}>{fmt(last.eventCycles)}</span> for the whole event (consumer touches and waits included)
        </span>
      </p>
      <p class="last-text" data-testid={`${p}last-text`}>
        {last.text}
      </p>
      <ul class="figures">
        {figures.map(([name, v]) => (
          <li class={v === 0 ? 'zero' : ''}>
            <b>{fmt(v)}</b> {name}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** One panel of a state: its place in the single-mode grid (columns of 12), title and body. */
export interface Panel {
  key: string;
  span: number;
  title: string;
  body: JSX.Element;
}

/** The panels of one state, in order; compare mode puts each beside its twin. */
export function statePanels({ state, p, zone, chartMax, compare }: StateViewProps): Panel[] {
  const zoneView = state.zones.find((z) => z.name === zone);
  const active = activeZones(state);
  const shownZones = state.zones.filter((z) => active.has(z.name) || z.name === zone);
  const idleZones = state.zones.filter((z) => !active.has(z.name) && z.name !== zone);
  return [
    {
      key: 'last',
      span: 8,
      title: 'Last event',
      body: (
        <>
          <LockPause state={state} p={p} />
          <LastEvent state={state} p={p} />
        </>
      ),
    },
    { key: 'chart', span: 4, title: 'Cycles by path so far', body: <PathChart paths={state.paths} max={chartMax} id={`${p}path-chart`} /> },
    {
      key: 'cpus',
      span: 7,
      title: 'CPUs',
      body: (
        <div class="cards">
          {state.cpus.map((c) => (
            <CpuPanel cpu={c} zone={zoneView} p={p} />
          ))}
        </div>
      ),
    },
    {
      key: 'zones',
      span: 5,
      title: 'Zones',
      body: (
        <>
          <div class="cards zones">
            {shownZones.map((z) => (
              <ZonePanel zone={z} p={p} />
            ))}
          </div>
          {idleZones.length > 0 && <p class="muted small">Not used yet: {idleZones.map((z) => z.name).join(', ')}.</p>}
        </>
      ),
    },
    {
      key: 'lines',
      span: 12,
      title: state.focus === null ? 'Cache lines' : `Cache lines of ${state.focus}'s structures`,
      body: (
        <>
          <p class="legend small">
            {(['M', 'O', 'E', 'S', 'I'] as const).map((s) => (
              <span class={`mesi mesi-${s}`}>
                {s} {STATE_NAMES[s]}
              </span>
            ))}
            <span class="touched-key">touched by the last step</span>
            <span class="boxed">outlined: the CPU that touched it</span>
            <span>⇄ cache-to-cache transfer · ✕ copy invalidated</span>
          </p>
          <LineGrid lines={state.lines} focus={state.focus} cpus={state.run.cpus} p={p} />
        </>
      ),
    },
    { key: 'tlb', span: 6, title: 'TLB entries of the pages touched', body: <TlbPanel tlb={state.tlb} p={p} /> },
    { key: 'walk', span: 6, title: 'Last page walk', body: <WalkPanel walk={state.walk} p={p} /> },
    { key: 'timeline', span: 12, title: 'Timeline', body: <Timeline state={state} id={`${p}timeline`} width={compare ? 640 : 1000} /> },
  ];
}

export function PanelBox({ panel, p }: { panel: Panel; p: string }) {
  return (
    <section class={panel.span === 0 ? "panel" : `panel span-${panel.span}`} aria-labelledby={`${p}h-${panel.key}`}>
      <h2 id={`${p}h-${panel.key}`}>{panel.title}</h2>
      {panel.body}
    </section>
  );
}

/** Single mode: the panels on a 12-column grid. */
export function StateView(props: StateViewProps) {
  return (
    <div class="state">
      {statePanels(props).map((panel) => (
        <PanelBox panel={panel} p={props.p} />
      ))}
    </div>
  );
}

/** Compare mode: the two states' panels in pairs, row by row, so that each sits beside its twin. */
export function CompareView({ states, chartMax }: { states: ViewState[]; chartMax: number }) {
  const sides = states.map((state, i) => ({ state, p: `side-${i}-`, panels: statePanels({ state, p: `side-${i}-`, zone: state.focus ?? busiestZone(state), chartMax, compare: true }) }));
  return (
    <div class="compare-grid">
      {sides.map(({ state, p }) => (
        <h2 class={`side-title ${state.run.pcpu ? 'on' : 'off'}`}>
          {state.run.label}{' '}
          <span class="muted small">
            event <b data-testid={`${p}position`}>{state.position}</b> / {state.total}
          </span>
        </h2>
      ))}
      {sides[0]!.panels.map((panel, k) =>
        sides.map(({ p, panels }) => <PanelBox panel={{ ...(panels[k] ?? panel), span: 0 }} p={p} />),
      )}
    </div>
  );
}
