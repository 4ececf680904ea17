// Development runner: `node --import ./tools/dev/register.mjs tools/cli.ts ...` runs the
// TypeScript sources through ts-node's ESM loader without a build.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

register('ts-node/esm', pathToFileURL('./'));
