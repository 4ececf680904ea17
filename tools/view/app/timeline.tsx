// The recent events as per-CPU lanes on the cycle axis, coloured by the path they took (plain SVG).

import type { ViewState } from '../state.js';
import { fmt } from './format.js';
import { PATH_KINDS, pathColour } from './paths.js';

/** Events drawn: the most recent ones, so that each stays wide enough to see. */
const SHOWN = 160;
const LANE = 24;
const LEFT = 56;
const AXIS = 22;

export function Timeline({ state, id, width: WIDTH }: { state: ViewState; id: string; width: number }) {
  const events = state.timeline.slice(-SHOWN);
  if (events.length === 0) return <p class="muted" data-testid={id}>No events yet.</p>;
  const t0 = Math.min(...events.map((e) => e.start));
  const t1 = Math.max(...events.map((e) => e.end), t0 + 1);
  const x = (t: number) => LEFT + ((t - t0) / (t1 - t0)) * (WIDTH - LEFT - 8);
  const cpus = state.run.cpus;
  const height = cpus * LANE + AXIS;
  const ticks = Array.from({ length: 5 }, (_, i) => t0 + ((t1 - t0) * i) / 4);
  const paths = [...new Set(events.map((e) => e.path))];
  return (
    <figure class="timeline">
      <svg viewBox={`0 0 ${WIDTH} ${height}`} data-testid={id} role="img" aria-label={`the last ${events.length} events on ${cpus} CPUs, cycles ${fmt(t0)} to ${fmt(t1)}`}>
        {Array.from({ length: cpus }, (_, c) => (
          <g>
            <rect class={c % 2 === 0 ? 'lane even' : 'lane'} x={LEFT} y={c * LANE} width={WIDTH - LEFT} height={LANE} />
            <text class="lane-label" x={LEFT - 6} y={c * LANE + LANE / 2 + 4} text-anchor="end">
              CPU {c}
            </text>
          </g>
        ))}
        {events.map((e) => {
          const last = e.n === state.position;
          return (
            <rect
              class={last ? 'ev last' : 'ev'}
              x={x(e.start)}
              y={e.cpu * LANE + 3}
              width={Math.max(1.5, x(e.end) - x(e.start))}
              height={LANE - 6}
              fill={pathColour(e.path)}
            >
              <title>{`event ${e.n} on CPU ${e.cpu}: ${e.path}, cycles ${fmt(e.start)}–${fmt(e.end)} (${fmt(e.end - e.start)})`}</title>
            </rect>
          );
        })}
        {ticks.map((t, i) => (
          <g>
            <line class="tick" x1={x(t)} x2={x(t)} y1={cpus * LANE} y2={cpus * LANE + 4} />
            <text class="tick-label" x={x(t)} y={cpus * LANE + 16} text-anchor={i === 0 ? 'start' : i === ticks.length - 1 ? 'end' : 'middle'}>
              {fmt(Math.round(t))}
            </text>
          </g>
        ))}
      </svg>
      <figcaption class="small">
        The last {events.length} events on the cycle axis; the outlined one is the last step's.{' '}
        {paths.map((p) => (
          <span class="key">
            <span class="swatch" style={{ background: pathColour(p) }} />
            {p}
          </span>
        ))}
        <span class="muted">
          {' '}
          (colours: {PATH_KINDS.map((k) => k.name).join(', ')}; lighter for frees)
        </span>
      </figcaption>
    </figure>
  );
}
