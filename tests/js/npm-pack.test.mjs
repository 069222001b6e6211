// The package as users get it: `npm pack` the web/ directory, install the tarball
// into an empty project (no registry needed: the package has no dependencies),
// import it by name, generate text, and run its `trillium` bin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stories260K } from './helpers.mjs';

const WEB = resolve(new URL('../../web', import.meta.url).pathname);

test('npm pack -> npm install -> import trillium -> generate', { timeout: 180000 }, async () => {
  assert.ok(existsSync(join(WEB, 'dist', 'trillium.wasm')), 'web/dist/trillium.wasm is missing: run make wasm');
  const pack = await stories260K();
  const work = mkdtempSync(join(tmpdir(), 'trl-npm-'));
  const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--offline'],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

  npm(['pack', '--pack-destination', work], WEB);
  const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack wrote no tarball');

  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npm(['install', join(work, tgz)], app);
  for (const f of ['trillium.wasm', 'trillium-relaxed.wasm', 'trillium-mt.js', 'trillium-mt.wasm',
    'trillium-mt-relaxed.wasm', 'trillium-mt.worker.js']) {
    assert.ok(existsSync(join(app, 'node_modules', 'trillium', 'dist', f)), `the tarball lacks dist/${f}`);
  }

  writeFileSync(join(app, 'main.mjs'), `
    import { Trillium } from 'trillium';
    const llm = await Trillium.load(process.argv[2], { cache: false });
    let text = '';
    for await (const piece of llm.generate('Once upon a time', { temperature: 0, maxTokens: 24 })) text += piece;
    llm.dispose();
    console.log(JSON.stringify(text));
  `);
  const text = JSON.parse(execFileSync('node', ['main.mjs', pack], { cwd: app }).toString());
  // llama2.c's greedy continuation of stories260K starts like this
  assert.match(text, /^, there was a little girl named Lily/);

  const bin = execFileSync(join(app, 'node_modules', '.bin', 'trillium'),
    ['run', pack, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '8', '--no-cache'],
    { cwd: app }).toString();
  assert.match(bin, /there was a little girl/);
});
