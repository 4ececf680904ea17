// The step API (tools/view/server.ts) as the page calls it.

import type { ViewAnswer } from '../state.js';

export type Call =
  | { kind: 'state' }
  | { kind: 'step'; n: number }
  | { kind: 'back'; n: number }
  | { kind: 'step-cpu'; cpu: number }
  | { kind: 'step-path'; path: string }
  | { kind: 'run' }
  | { kind: 'step-lock' }
  | { kind: 'focus'; zone: string | null }
  | { kind: 'goto'; position: number };

export async function callApi(call: Call): Promise<ViewAnswer> {
  const { kind, ...body } = call;
  const init: RequestInit = kind === 'state' ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  const res = await fetch(`/api/${kind}`, init);
  const text = await res.text();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`the server answered ${res.status} ${text.trim().slice(0, 200)}`);
  }
  if (!res.ok) throw new Error((doc as { error?: string }).error ?? `the server answered ${res.status}`);
  return doc as ViewAnswer;
}
