// Builds the console into internal/web/dist (or the directory given as the
// first argument). The output must be byte-for-byte reproducible: pinned
// versions from package-lock.json, fixed esbuild options, content hashes in
// the file names and nothing that depends on the clock or the machine.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(process.argv[2] ?? path.join(here, '..', 'internal', 'web', 'dist'));

fs.rmSync(outdir, { recursive: true, force: true });
fs.mkdirSync(outdir, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js', style: 'src/style.css' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2022'],
  charset: 'utf8',
  legalComments: 'eof',
  sourcemap: false,
  entryNames: '[name]-[hash]',
  outdir,
  metafile: true,
  logLevel: 'warning',
});

const outputs = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint === 'src/main.js') outputs.app = path.basename(file);
  if (meta.entryPoint === 'src/style.css') outputs.style = path.basename(file);
}
if (!outputs.app || !outputs.style) {
  throw new Error('esbuild did not produce both app and style bundles');
}

// The atlas is served as it comes from world-atlas (Natural Earth 1:50m), and
// topojson-client turns it into outlines in the browser.
const atlas = fs.readFileSync(path.join(here, 'node_modules', 'world-atlas', 'countries-50m.json'));
const atlasName = `countries-50m-${createHash('sha256').update(atlas).digest('hex').slice(0, 8)}.json`;
fs.writeFileSync(path.join(outdir, atlasName), atlas);

// The tab's icon: without one, every page load asks for /favicon.ico and
// gets a 404.
const favicon = fs.readFileSync(path.join(here, 'src', 'favicon.svg'));
const faviconName = `favicon-${createHash('sha256').update(favicon).digest('hex').slice(0, 8)}.svg`;
fs.writeFileSync(path.join(outdir, faviconName), favicon);

const html = fs.readFileSync(path.join(here, 'src', 'index.html'), 'utf8')
  .replaceAll('{{FAVICON}}', faviconName)
  .replaceAll('{{APP_JS}}', outputs.app)
  .replaceAll('{{STYLE_CSS}}', outputs.style)
  .replaceAll('{{ATLAS_JSON}}', atlasName);
fs.writeFileSync(path.join(outdir, 'index.html'), html);

const notices = [
  ['world-atlas 2.0.2 (data: Natural Earth, public domain)', 'node_modules/world-atlas/LICENSE'],
  ['topojson-client 3.1.0', 'node_modules/topojson-client/LICENSE'],
].map(([name, file]) => `${name}\n\n${fs.readFileSync(path.join(here, file), 'utf8').trim()}\n`);
fs.writeFileSync(path.join(outdir, 'THIRD_PARTY_NOTICES.txt'), notices.join('\n----\n\n'));
