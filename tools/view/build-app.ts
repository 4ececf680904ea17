// make build's second step: the viewer's page (tools/view/app/) bundled with esbuild into
// dist/view/ (index.html, app.js, app.css), which `kmemu view` serves. The output depends only
// on the sources: no timestamps, no absolute paths, no source map.
//
//   node dist/tools/view/build-app.js [OUT_DIR]

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** The repository's root, from tools/view/ or dist/tools/view/. */
function root(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, here.includes(`${join('dist', 'tools')}`) ? '../../..' : '../..');
}

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kmemu view</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script type="module" src="/app.js"></script>
</head>
<body>
<div id="app"><p class="loading">Loading kmemu view…</p></div>
<noscript>kmemu view is a script: it needs JavaScript.</noscript>
</body>
</html>
`;

export async function buildViewApp(out: string): Promise<void> {
  const top = root();
  const app = join(top, 'tools', 'view', 'app');
  mkdirSync(out, { recursive: true });
  await build({
    absWorkingDir: top,
    entryPoints: [join(app, 'main.tsx')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'none',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(app, 'tsconfig.json'),
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  writeFileSync(join(out, 'app.css'), readFileSync(join(app, 'app.css')));
  writeFileSync(join(out, 'index.html'), INDEX_HTML);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildViewApp(resolve(process.argv[2] ?? join(root(), 'dist', 'view')));
}
