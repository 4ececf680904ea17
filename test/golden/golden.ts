// Golden figures: exact results of small fixed runs, kept in test/golden/*.json. A test
// compares against its file; `UPDATE_GOLDEN=1 npx vitest run test/golden` rewrites the files,
// and the commit that changes a figure says why.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export function expectGolden(name: string, actual: unknown): void {
  const file = join('test', 'golden', `${name}.json`);
  const text = JSON.stringify(actual, null, 2) + '\n';
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI === 'true' && !existsSync(file)) throw new Error(`golden file ${file} is missing`);
    writeFileSync(file, text);
    return;
  }
  expect(JSON.parse(text)).toEqual(JSON.parse(readFileSync(file, 'utf8')));
}
