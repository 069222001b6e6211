#!/usr/bin/env node
// Assembles the demo as plain static files, ready for any static host:
//
//   node demo/build.mjs [--out build/demo/site] [--pack NAME=DIR ...] [--web web] [--tag TEXT]
//
//   SITE/index.html, app.js, style.css, lib/, icons/, manifest.webmanifest   the app shell (from demo/)
//   SITE/sw.js              the service worker, with this build's version and shell list written in
//   SITE/config.json        the packs the page offers (the first is the default)
//   SITE/trillium/src/      the npm package's browser modules (web/src), unbundled ES modules
//   SITE/trillium/dist/     its wasm builds (web/dist: trillium.wasm and any threaded build)
//   SITE/packs/NAME/        model packs (manifest.json + chunks), copied from --pack
//
// The version is a hash of every shell file, so any change to the app or the
// package gives a new sw.js, which browsers install as an update.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEMO = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(DEMO, '..');

// demo/ files that are part of the site (the rest, build and test tooling, is not)
const SHELL_FILES = ['index.html', 'app.js', 'style.css', 'manifest.webmanifest'];
const SHELL_DIRS = ['lib'];

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

const posix = (p) => p.split(sep).join('/');

/**
 * Build the site into `out` (replaced). Returns { out, version, shell, packs }.
 * @param {{out: string, packs?: {name: string, dir: string}[], web?: string, tag?: string}} opts
 */
export function buildSite({ out, packs = [], web = join(ROOT, 'web'), tag = '' }) {
  out = resolve(out);
  const webSrc = join(web, 'src');
  const webDist = join(web, 'dist');
  if (!existsSync(join(webSrc, 'index.js'))) throw new Error(`${webSrc}/index.js not found: is ${web} the trillium package?`);
  const wasms = existsSync(webDist) ? readdirSync(webDist).filter((f) => f.endsWith('.wasm')) : [];
  if (!wasms.includes('trillium.wasm')) {
    throw new Error(`${webDist}/trillium.wasm not found: build it first (make wasm)`);
  }
  for (const p of packs) {
    if (!/^[A-Za-z0-9._-]+$/.test(p.name)) throw new Error(`pack name ${JSON.stringify(p.name)}: use letters, digits, '.', '_' or '-'`);
    if (!existsSync(join(p.dir, 'manifest.json'))) throw new Error(`${p.dir}/manifest.json not found: convert the pack first (make pack)`);
  }

  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const f of SHELL_FILES) cpSync(join(DEMO, f), join(out, f));
  for (const d of SHELL_DIRS) cpSync(join(DEMO, d), join(out, d), { recursive: true });
  // icons are drawn by a script, not committed
  execFileSync(process.execPath, [join(DEMO, 'make-icons.mjs'), join(out, 'icons')], { stdio: 'inherit' });
  cpSync(webSrc, join(out, 'trillium/src'), { recursive: true });
  // Every file of dist/: both wasm builds and whatever JS the threaded one needs.
  if (existsSync(webDist)) cpSync(webDist, join(out, 'trillium/dist'), { recursive: true });

  const config = { packs: [] };
  for (const p of packs) {
    const dest = join(out, 'packs', p.name);
    mkdirSync(dest, { recursive: true });
    // Only the files the manifest names (a pack dir may hold converter leftovers).
    const m = JSON.parse(readFileSync(join(p.dir, 'manifest.json'), 'utf8'));
    cpSync(join(p.dir, 'manifest.json'), join(dest, 'manifest.json'));
    for (const c of m.chunks ?? []) cpSync(join(p.dir, c.file), join(dest, c.file));
    config.packs.push({ name: p.name, url: `packs/${p.name}/` });
  }
  writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');

  // The shell the service worker precaches: everything but the packs (those
  // are cached as the user loads them) and the worker itself.
  const files = walk(out)
    .map((f) => posix(relative(out, f)))
    .filter((f) => !f.startsWith('packs/') && f !== 'sw.js');
  const h = createHash('sha256');
  h.update(tag);
  for (const f of files) {
    h.update(f + '\0');
    h.update(readFileSync(join(out, f)));
  }
  const version = h.digest('hex').slice(0, 16);
  const shell = ['./', ...files];
  let sw = readFileSync(join(DEMO, 'sw.js'), 'utf8');
  const marker = /^const VERSION = .*;\nconst SHELL = .*;$/m;
  if (!marker.test(sw)) throw new Error('demo/sw.js: the VERSION/SHELL lines build.mjs rewrites are missing');
  sw = sw.replace(marker, `const VERSION = ${JSON.stringify(version)};\nconst SHELL = ${JSON.stringify(shell)};`);
  writeFileSync(join(out, 'sw.js'), sw);
  return { out, version, shell, packs: config.packs, wasms };
}

function parseArgs(argv) {
  const o = { out: join(ROOT, 'build/demo/site'), packs: [], web: join(ROOT, 'web'), tag: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') o.out = value();
    else if (a === '--web') o.web = value();
    else if (a === '--tag') o.tag = value();
    else if (a === '--pack') {
      const v = value();
      const eq = v.indexOf('=');
      if (eq <= 0) throw new Error(`--pack wants NAME=DIR, got ${v}`);
      o.packs.push({ name: v.slice(0, eq), dir: v.slice(eq + 1) });
    } else if (a === '-h' || a === '--help') o.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`build.mjs: ${e.message} (try --help)`);
    process.exit(2);
  }
  if (o.help) {
    console.log('usage: node demo/build.mjs [--out build/demo/site] [--pack NAME=DIR ...] [--web web] [--tag TEXT]');
    process.exit(0);
  }
  try {
    const r = buildSite(o);
    const size = (d) => walk(d).reduce((s, f) => s + statSync(f).size, 0);
    console.log(`demo site: ${r.out} (version ${r.version}; wasm: ${r.wasms.join(', ')}; packs: ${r.packs.map((p) => p.name).join(', ') || 'none'}; ${(size(r.out) / 1048576).toFixed(1)} MiB)`);
  } catch (e) {
    console.error(`build.mjs: ${e.message}`);
    process.exit(1);
  }
}
