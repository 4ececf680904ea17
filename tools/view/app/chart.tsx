// Cycles by path so far, a vega-lite bar chart compiled in the page and rendered as SVG by vega
// (no vega-embed: vega-lite's compile(), then a vega View).

import { useEffect, useRef } from 'preact/hooks';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { PathTotal } from '../state.js';
import { pathColour } from './paths.js';

export function PathChart({ paths, max, id }: { paths: PathTotal[]; max: number; id: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const key = JSON.stringify([paths, max]);
  useEffect(() => {
    const el = ref.current;
    if (el === null || paths.length === 0) return undefined;
    const rows = paths.map((p) => ({ ...p, perOp: p.ops === 0 ? 0 : p.cycles / p.ops, label: `${p.ops.toLocaleString('en-US')} ops · ${(p.ops === 0 ? 0 : p.cycles / p.ops).toFixed(0)} c/op` }));
    const spec: TopLevelSpec = {
      width: Math.max(160, el.clientWidth - 180),
      height: { step: 20 },
      background: 'transparent',
      data: { values: rows },
      encoding: {
        y: { field: 'path', type: 'nominal', sort: [...paths].sort((a, b) => b.cycles - a.cycles).map((p) => p.path), title: null },
        x: { field: 'cycles', type: 'quantitative', title: 'cycles', scale: { domain: [0, Math.max(1, max) * 1.35] }, axis: { format: '~s', tickCount: 4 } },
      },
      layer: [
        {
          mark: { type: 'bar', cornerRadiusEnd: 2 },
          encoding: {
            color: { field: 'path', type: 'nominal', scale: { domain: paths.map((p) => p.path), range: paths.map((p) => pathColour(p.path)) }, legend: null },
            tooltip: [
              { field: 'path', type: 'nominal' },
              { field: 'ops', type: 'quantitative', format: ',' },
              { field: 'cycles', type: 'quantitative', format: ',' },
              { field: 'perOp', type: 'quantitative', title: 'cycles per op', format: ',.1f' },
            ],
          },
        },
        { mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, color: '#444' }, encoding: { text: { field: 'label', type: 'nominal' } } },
      ],
      config: { font: 'system-ui, sans-serif', view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 11, labelLimit: 170 } },
    };
    const view = new View(parse(compile(spec).spec), { renderer: 'svg', container: el, hover: true });
    view.runAsync().catch((err: unknown) => {
      el.textContent = `The chart could not be drawn: ${err instanceof Error ? err.message : String(err)}`;
    });
    return () => view.finalize();
    // Redrawn when its figures change (key), not on every render.
  }, [key]);
  if (paths.length === 0) return <p class="muted" data-testid={id}>No timed allocator operation yet.</p>;
  return <div class="chart" ref={ref} data-testid={id} role="img" aria-label={`cycles by path: ${paths.map((p) => `${p.path} ${p.cycles} cycles in ${p.ops} ops`).join('; ')}`} />;
}
