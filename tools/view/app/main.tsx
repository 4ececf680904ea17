// kmemu view's page: a toolbar that steps the replay through the step API (server.ts) and the
// state it answers (state.ts) as panels; in compare mode the two replays side by side.
//
// Stable hooks for tests (data-testid). In compare mode every one inside a side is prefixed
// with "side-0-" (per-CPU caching on) or "side-1-" (off); the toolbar's are not.
//   toolbar: step-1, step-n, back-1, back-n, n-input, cpu-select, step-cpu, path-select,
//     step-path, step-lock, run, goto-input, goto, zone-select (pins the zone the CPU panels and
//     the lines grid show; "" follows the last event), position (side 0's in compare
//     mode; each side also shows side-N-position), total, busy (while a call runs), error (a
//     call that failed), message (what the last step could not do, from the server)
//   last event: last-cpu ("CPU c"), last-what, last-path (the path label, or empty), last-text,
//     last-event-cycles, lock-text (paused inside an event at a lock operation)
//   CPU c: cpu-c (panel), cpu-c-status, cpu-c-clock, cpu-c-events, cpu-c-holds, cpu-c-spins,
//     cpu-c-labels, cpu-c-cache-zone (the zone whose per-CPU cache is shown: the state's focus),
//     cpu-c-no-cache (per-CPU caching off),
//     UMA: cpu-c-alloc-count, cpu-c-free-count ("none" without a bucket), cpu-c-alloc-entries,
//     cpu-c-free-entries, cpu-c-alloc-items, cpu-c-free-items (top of stack first);
//     vm_zone: cpu-c-list-count, cpu-c-list-items (head first); cpu-c-allocs, cpu-c-frees (when
//     either is nonzero)
//   zone NAME (non-[A-Za-z0-9_.-] as "_"): zone-NAME (panel), zone-NAME-lock-word,
//     zone-NAME-lock-holder ("CPU c" or "none"), zone-NAME-lock-waiters ("CPU a, CPU b" or
//     "none"), zone-NAME-lock-spin, zone-NAME-used, zone-NAME-free; UMA: zone-NAME-depot-full,
//     zone-NAME-depot-free (buckets), zone-NAME-slabs-part, -slabs-full, -slabs-free (slabs);
//     vm_zone: zone-NAME-locked-count, zone-NAME-locked-items
//   cache lines (the focused zone's, then others the last event touched; PA as the state writes
//     it, "0x…"): lines (table), line-PA (row),
//     line-PA-cpu-c-l1, line-PA-cpu-c-l2 (M, O, E, S or I), line-PA-llc ("dirty", "clean" or
//     "—"), line-PA-marks
//   tlb-cpu-c, walk, walk-cycles, timeline (svg), path-chart
// Keys: → step 1, ← back 1, shift+→ step N, shift+← back N (not while typing in a field).

import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ViewAnswer, ViewState } from '../state.js';
import { callApi, type Call } from './api.js';
import { knownPaths, pathInfo } from './paths.js';
import { busiestZone, CompareView, StateView } from './state-view.js';

function statesOf(answer: ViewAnswer): ViewState[] {
  return answer.mode === 'single' ? [answer.state] : [...answer.states];
}

function Toolbar({ answer, run, busy, pinned, setPinned }: {
  answer: ViewAnswer;
  run: (c: Call) => void;
  busy: boolean;
  /** The zone pinned ("": the one the last event touched most). */
  pinned: string;
  setPinned: (z: string) => void;
}) {
  const states = statesOf(answer);
  const s = states[0]!;
  const [n, setN] = useState(10);
  const [cpu, setCpu] = useState(0);
  const [goto, setGoto] = useState(0);
  const seen = [...new Set(states.flatMap((x) => x.paths.map((p) => p.path)))].sort();
  const known = knownPaths(s.run.allocator).filter((p) => !seen.includes(p));
  const [path, setPath] = useState('');
  const chosenPath = path !== '' ? path : (seen[0] ?? known[0] ?? '');
  const count = (v: string, min: number) => Math.max(min, Math.floor(Number(v) || min));
  return (
    <nav class="toolbar" aria-label="replay controls">
      <div class="group" role="group" aria-label="step">
        <button type="button" data-testid="back-n" onClick={() => run({ kind: 'back', n })} disabled={s.position === 0} title="shift+←">
          « back {n}
        </button>
        <button type="button" data-testid="back-1" onClick={() => run({ kind: 'back', n: 1 })} disabled={s.position === 0} title="←">
          ‹ back 1
        </button>
        <button type="button" class="primary" data-testid="step-1" onClick={() => run({ kind: 'step', n: 1 })} disabled={s.done} title="→">
          step 1 ›
        </button>
        <button type="button" data-testid="step-n" onClick={() => run({ kind: 'step', n })} disabled={s.done} title="shift+→">
          step {n} »
        </button>
        <label>
          N{' '}
          <input type="number" min={1} value={n} data-testid="n-input" onInput={(e) => setN(count(e.currentTarget.value, 1))} class="num-input" />
        </label>
      </div>
      <div class="group" role="group" aria-label="step to the next event on a CPU">
        <label>
          next event on{' '}
          <select data-testid="cpu-select" value={cpu} onChange={(e) => setCpu(Number(e.currentTarget.value))}>
            {s.cpus.map((c) => (
              <option value={c.id}>CPU {c.id}</option>
            ))}
          </select>
        </label>
        <button type="button" data-testid="step-cpu" onClick={() => run({ kind: 'step-cpu', cpu })} disabled={s.done}>
          go
        </button>
      </div>
      <div class="group" role="group" aria-label="step to the next event on a path">
        <label>
          next on path{' '}
          <select data-testid="path-select" value={chosenPath} onChange={(e) => setPath(e.currentTarget.value)}>
            {seen.length > 0 && (
              <optgroup label="seen so far">
                {seen.map((p) => (
                  <option value={p} title={pathInfo(p)}>
                    {p}
                  </option>
                ))}
              </optgroup>
            )}
            <optgroup label="other paths">
              {known.map((p) => (
                <option value={p} title={pathInfo(p)}>
                  {p}
                </option>
              ))}
            </optgroup>
          </select>
        </label>
        <button type="button" data-testid="step-path" onClick={() => run({ kind: 'step-path', path: chosenPath })} disabled={s.done || chosenPath === ''}>
          go
        </button>
      </div>
      <div class="group" role="group" aria-label="step to the next lock operation">
        <button type="button" data-testid="step-lock" onClick={() => run({ kind: 'step-lock' })} disabled={s.done} title="run to the next time a CPU takes, tries or releases a zone's lock (a pause inside an event)">
          next lock op
        </button>
      </div>
      <div class="group" role="group" aria-label="jump">
        <button type="button" data-testid="run" onClick={() => run({ kind: 'run' })} disabled={s.done}>
          run to end »|
        </button>
        <label>
          event{' '}
          <input type="number" min={0} max={s.total} value={goto} data-testid="goto-input" onInput={(e) => setGoto(count(e.currentTarget.value, 0))} class="num-input wide" />
        </label>
        <button type="button" data-testid="goto" onClick={() => run({ kind: 'goto', position: goto })}>
          go to
        </button>
      </div>
      <div class="group" role="group" aria-label="which zone to show">
        <label>
          zone{' '}
          <select
            data-testid="zone-select"
            value={pinned}
            onChange={(e) => {
              const z = e.currentTarget.value;
              setPinned(z);
              run({ kind: 'focus', zone: z === '' ? null : z });
            }}
          >
            <option value="">the last event's ({s.focus ?? 'none yet'})</option>
            {s.zones.map((z) => (
              <option value={z.name}>{z.name}</option>
            ))}
          </select>
        </label>
      </div>
      <div class="position" aria-live="polite">
        <span>
          event <b data-testid="position">{s.position}</b> of <span data-testid="total">{s.total}</span>
        </span>
        <progress max={Math.max(1, s.total)} value={s.position} aria-label="position in the trace" />
        {busy && (
          <span class="busy" data-testid="busy">
            running…
          </span>
        )}
      </div>
    </nav>
  );
}

function App() {
  const [answer, setAnswer] = useState<ViewAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [pinned, setPinned] = useState('');
  const busyRef = useRef(false);
  /** Events the keys asked for while a call ran (+ forward, - back), sent as one call after it. */
  const pendingRef = useRef(0);

  const run = useCallback(async (call: Call) => {
    // One call at a time; a click while one runs is dropped (the buttons show the state it left).
    if (busyRef.current) return;
    busyRef.current = true;
    setBusy(true);
    let next: Call | null = call;
    try {
      while (next !== null) {
        setAnswer(await callApi(next));
        setError(null);
        const d = pendingRef.current;
        pendingRef.current = 0;
        next = d > 0 ? { kind: 'step', n: d } : d < 0 ? { kind: 'back', n: -d } : null;
      }
    } catch (err) {
      pendingRef.current = 0;
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      busyRef.current = false;
      setBusy(false);
    }
  }, []);

  /** Keys: n events forward (n > 0) or back; while a call runs they add up, and none is lost. */
  const move = useCallback(
    (n: number) => {
      if (busyRef.current) pendingRef.current += n;
      else void run(n > 0 ? { kind: 'step', n } : { kind: 'back', n: -n });
    },
    [run],
  );

  useEffect(() => {
    void run({ kind: 'state' });
  }, [run]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t !== null && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
      if (e.altKey || e.ctrlKey || e.metaKey) return;
      const input = document.querySelector<HTMLInputElement>('[data-testid="n-input"]');
      const n = e.shiftKey ? Math.max(1, Math.floor(Number(input?.value) || 1)) : 1;
      if (e.key === 'ArrowRight') move(n);
      else if (e.key === 'ArrowLeft') move(-n);
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [move]);

  if (answer === null) {
    return (
      <main class="loading">
        {error === null ? (
          <p>Loading the replay…</p>
        ) : (
          <p role="alert" class="error" data-testid="error">
            {error}
          </p>
        )}
      </main>
    );
  }
  const states = statesOf(answer);
  const first = states[0]!;
  const chartMax = Math.max(0, ...states.flatMap((s) => s.paths.map((p) => p.cycles)));
  const compare = answer.mode === 'compare';
  return (
    <>
      <header class="top">
        <h1>
          kmemu view <span class="muted">{compare ? 'compare: per-CPU caching on and off' : ''}</span>
        </h1>
        <p data-testid="run-label">
          {first.run.trace} on {first.run.machine} ({first.run.cpus} CPU{first.run.cpus === 1 ? '' : 's'}), {first.run.allocator === 'uma' ? 'UMA' : 'vm_zone'}
          {first.run.aligned ? ', aligned per-CPU state' : ''}
          {compare ? '' : `, ${first.run.label}`}
        </p>
        <p class="keys small">keys: → step · ← back · shift+→/← N events</p>
      </header>
      <Toolbar answer={answer} run={(c) => void run(c)} busy={busy} pinned={pinned} setPinned={setPinned} />
      {error !== null && (
        <p role="alert" class="error" data-testid="error">
          {error}
        </p>
      )}
      {answer.message !== null && (
        <p role="status" class="message" data-testid="message">
          {answer.message}
        </p>
      )}
      <main class={compare ? 'compare' : 'single'}>
        {compare ? (
          <CompareView states={states} chartMax={chartMax} />
        ) : (
          <StateView state={first} p="" zone={first.focus ?? busiestZone(first)} chartMax={chartMax} compare={false} />
        )}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<App />, root);
}
