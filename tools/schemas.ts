// The JSON Schemas of kmemu's JSON documents, generated from their zod schemas (the one
// definition of each) into docs/schemas/. `make schemas` (node dist/tools/schemas.js) writes
// them; test/tools/schemas.test.ts checks that the committed files are what this generates
// and that real outputs validate against them.

import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { linuxImportSummarySchema, replayReportSchema, traceStatsDocSchema } from '../traces/index.js';
import { layoutDocSchema } from './boot.js';
import { cachesimDocSchema } from './cachesim-schema.js';
import { calibrateDocSchema } from './calibrate.js';
import { compareDocSchema } from './report.js';

/** `kmemu sysctl --json`: name → value (→ description with -d), as sysctl(8) names them; no schema field. */
export const sysctlJsonSchema = z
  .record(z.string().regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/), z.union([z.number().int(), z.string()]))
  .describe('kmemu sysctl --json: one object of sysctl name → value (an integer, or a string such as vm.zone), or → description with -d');

/** Every document: its schema id, the file its JSON Schema goes to, and its zod schema. */
export const documents = [
  { id: 'kmemu.report/1', file: 'kmemu.report-1.schema.json', schema: replayReportSchema },
  { id: 'kmemu.compare/1', file: 'kmemu.compare-1.schema.json', schema: compareDocSchema },
  { id: 'kmemu.cachesim/1', file: 'kmemu.cachesim-1.schema.json', schema: cachesimDocSchema },
  { id: 'kmemu.trace-import/1', file: 'kmemu.trace-import-1.schema.json', schema: linuxImportSummarySchema },
  { id: 'kmemu.trace-stats/1', file: 'kmemu.trace-stats-1.schema.json', schema: traceStatsDocSchema },
  { id: 'kmemu.calibrate/1', file: 'kmemu.calibrate-1.schema.json', schema: calibrateDocSchema },
  { id: 'kmemu.layout/1', file: 'kmemu.layout-1.schema.json', schema: layoutDocSchema },
  { id: 'kmemu.sysctl', file: 'kmemu.sysctl.schema.json', schema: sysctlJsonSchema },
] as const;

/** The JSON Schema (draft 2020-12) of one document, as the text written to its file. */
export function jsonSchemaText(doc: (typeof documents)[number]): string {
  const json = z.toJSONSchema(doc.schema, { target: 'draft-2020-12', io: 'output', reused: 'inline' }) as Record<string, unknown>;
  const { $schema, ...rest } = json;
  return `${JSON.stringify({ $schema, title: doc.id, ...rest }, null, 2)}\n`;
}

/** Every schema file: name → text. */
export function generateSchemas(): Map<string, string> {
  return new Map(documents.map((d) => [d.file, jsonSchemaText(d)]));
}

/** Writes every schema file into `dir`; returns their names. */
export function writeSchemas(dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files = generateSchemas();
  for (const [name, text] of files) fs.writeFileSync(`${dir}/${name}`, text);
  return [...files.keys()];
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const dir = process.argv[2] ?? 'docs/schemas';
  for (const name of writeSchemas(dir)) process.stdout.write(`${dir}/${name}\n`);
}
