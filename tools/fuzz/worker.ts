// The fuzzer's worker thread: checks the inputs the engine posts, one at a time, so that the
// engine can stop a run that outlives its time budget.

import { parentPort } from 'node:worker_threads';
import { checkCase } from './check.js';
import type { FuzzCase, TargetName } from './targets.js';

export interface WorkerRequest {
  target: TargetName;
  case: FuzzCase;
  dir: string;
}

parentPort!.on('message', (req: WorkerRequest) => {
  void checkCase(req.target, req.case, req.dir).then((v) => parentPort!.postMessage(v));
});
