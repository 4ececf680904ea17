// Lint for kmemu. Besides the usual TypeScript checks it enforces the layering rule from
// DESIGN.md: tools -> traces -> kernel -> emu, never upward, and a layer is entered only
// through its index.ts — or its index-lite.ts, a part of that surface which loads without the
// heavy modules, for commands that must start fast.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layers = ['emu', 'kernel', 'traces', 'tools'];
const kernelFolders = ['amd64', 'kern', 'vm'];

/** The import patterns a file in `layer` may not use. */
function forbiddenFor(layer) {
  const rank = layers.indexOf(layer);
  const patterns = [];
  for (const other of layers) {
    if (other === layer) continue;
    if (layers.indexOf(other) > rank) {
      patterns.push({
        group: [`**/${other}/**`, `**/${other}`],
        message: `${layer}/ may not import from ${other}/: layers go tools -> traces -> kernel -> emu, never upward.`,
      });
    } else {
      patterns.push({
        group: [`**/${other}/**`, `!**/${other}/index.js`, `!**/${other}/index-lite.js`],
        message: `import ${other}/ through ${other}/index.js, its one public surface (or index-lite.js, the part of it that loads fast).`,
      });
    }
  }
  return patterns;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // A CPU's program is a generator by contract, whether or not it reaches a sync point.
      'require-yield': 'off',
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: 'Use a seeded generator (seedrandom) so runs are deterministic.' },
        { object: 'Date', property: 'now', message: 'Wall-clock time must not reach results.' }],
    },
  },
  ...layers.map((layer) => ({
    files: [`${layer}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns: forbiddenFor(layer) }] },
  })),
  // kernel/ is laid out as the source tree (amd64/, kern/, vm/). Like FreeBSD's, its folders use
  // each other, so they are not ranked; but a folder is entered only through its index.ts.
  ...kernelFolders.map((folder) => ({
    files: [`kernel/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          ...forbiddenFor('kernel'),
          ...kernelFolders.filter((f) => f !== folder).map((other) => ({
            group: [`../${other}/**`, `!../${other}/index.js`],
            message: `import kernel/${other}/ through ../${other}/index.js, its one public surface.`,
          })),
          { group: ['../index.js'], message: 'kernel/index.js is for the layers above; inside kernel/ import the folder you need.' },
        ],
      }],
    },
  })),
  // The command tree (tools/commands/, and the sweep's and view's command.ts) is all that `kmemu
  // --help` or a bad command line loads: it imports no machine, kernel, trace, zod or vega code,
  // nor a command's implementation (types are free); an action loads those with import().
  ...[
    { files: ['tools/commands/**/*.ts'], outside: ['../**'] },
    { files: ['tools/sweep/command.ts', 'tools/view/command.ts'], outside: ['./*', '../*.js', '../**/index.js'] },
  ].map(({ files, outside }) => ({
    files,
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          ...forbiddenFor('tools'),
          {
            group: outside,
            allowTypeImports: true,
            message: 'the command tree loads no implementation: import it with import() in the action (a type import is fine).',
          },
          {
            group: ['zod', 'zod/**', 'vega', 'vega-lite', 'cli-progress', 'js-yaml', 'tinypool', 'seedrandom'],
            message: 'the command tree loads no implementation: import it with import() in the action.',
          },
        ],
      }],
    },
  })),
  // kmemu view's page runs in a browser: it takes the state's types and the label glossary,
  // never Node or the machine (the bundle would not load).
  {
    files: ['tools/view/app/**/*.ts', 'tools/view/app/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*'], message: "the viewer's page runs in a browser: no Node modules." },
          { group: ['**/emu/**', '**/kernel/**', '**/traces/**', '../server.js', '../session.js', '../command.js'], message: "the viewer's page talks to the replay through the step API only (api.ts); it imports types from ../state.js." },
        ],
      }],
    },
  },
  {
    files: ['tools/bench/**/*.ts', 'tools/progress.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
