// Shared setup for the browser end-to-end tests of the demo (tests/e2e/*.test.mjs):
// a demo site built from the current demo/, web/src and web/dist, served by
// demo/serve.mjs, driven in Debian's headless Chromium through playwright-core
// (never a downloaded browser).
//
//   CHROMIUM     the browser (default /usr/bin/chromium; apt-get install chromium)
//   TRL_CONVERT, TRL_PACK, TRL_MODEL_BIN, TRL_MODEL_TOK  as for the JS tests (tests/js/helpers.mjs,
//                whose pack conversion and temp dirs these tests share)
//   TRL_E2E_ARTIFACTS  where screenshots go (default test-artifacts/e2e)
//   TRL_E2E_WEB  the trillium package to put in the site (default web/: its src/ and dist/)
//
// Missing prerequisites fail the tests with what to run; nothing is skipped.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { buildSite } from '../../demo/build.mjs';
import { startServer } from '../../demo/serve.mjs';
import { ROOT, convertPack as convertWith, stories260K, tmpDir } from '../js/helpers.mjs';

export { ROOT, stories260K, tmpDir };
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = resolve(ROOT, process.env.TRL_E2E_ARTIFACTS || 'test-artifacts/e2e');
export const WEB = resolve(ROOT, process.env.TRL_E2E_WEB || 'web');

export function playwright() {
  const require = createRequire(join(ROOT, 'demo/package.json'));
  try {
    return require('playwright-core');
  } catch {
    assert.fail('playwright-core is not installed: run `npm install` in demo/ (make test-e2e does it)');
  }
}

/** stories260K converted with extra trillium-convert flags (e.g. --lowrank), named `name`. */
export const convertPack = (name, flags) => convertWith(['--name', name, ...flags]);

/**
 * Build a demo site into a temp dir and serve it.
 * @param {{packs?: {name, dir}[], isolation?: boolean, tag?: string}} [o]
 * @returns {Promise<{dir, url, build, rebuild(o), close()}>}
 */
export async function serveSite({ packs, isolation = true, tag = '' } = {}) {
  const dir = join(tmpDir('trl-e2e-site-'), 'site');
  packs ??= [{ name: 'stories260K', dir: await stories260K() }];
  let build = buildSite({ out: dir, packs, tag, web: WEB });
  const srv = await startServer({ root: dir, port: 0, isolation });
  return {
    dir,
    url: srv.url,
    get build() {
      return build;
    },
    rebuild(o = {}) {
      build = buildSite({ out: dir, packs: o.packs ?? packs, tag: o.tag ?? tag, web: WEB });
      return build;
    },
    close: () => srv.close(),
  };
}

/**
 * A fresh Chromium profile (so no service worker or cache survives from another test).
 * @param {object} [o] playwright context options (viewport, isMobile, ...)
 */
export async function launch(o = {}) {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
  const { chromium } = playwright();
  const profile = tmpDir('trl-e2e-profile-');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
    viewport: { width: 1280, height: 800 },
    serviceWorkers: 'allow',
    ...o,
  });
  return ctx;
}

/**
 * Run `fn({ ctx, page, errors })` in a fresh profile (see launch) and close it
 * afterwards. `setup(ctx)` runs before the page opens (init scripts); the other
 * options go to the browser context.
 */
export async function withPage(fn, { setup, ...contextOptions } = {}) {
  const ctx = await launch(contextOptions);
  try {
    await setup?.(ctx);
    const page = await ctx.newPage();
    return await fn({ ctx, page, errors: watch(page) });
  } finally {
    await ctx.close();
  }
}

/** Page errors and console errors, to assert none happened. */
export function watch(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

export async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Wait until the demo has a model (or failed to load one); returns the state. */
export async function waitModel(page, timeout = 60000) {
  await page.locator('body[data-state="ready"], body[data-state="error"]').waitFor({ timeout });
  const s = await page.evaluate(() => ({ state: document.body.dataset.state, error: window.trilliumDemo?.lastError }));
  return s;
}

export async function waitReady(page, timeout = 60000) {
  const s = await waitModel(page, timeout);
  assert.equal(s.state, 'ready', `the demo did not load its model: ${JSON.stringify(s.error)}`);
}

/**
 * Send `text` through the composer (typed, then Enter) and record the reply's
 * text each time the DOM changes, so streaming can be asserted afterwards.
 * `stopAfter`: stop once the reply has that many characters, by clicking Stop
 * (`stopWith: 'click'`) or pressing Escape (`stopWith: 'Escape'`), from inside
 * the page so the stop lands mid-generation however fast the model is.
 */
export async function send(page, text, { stopAfter = 0, stopWith = 'click', timeout = 60000 } = {}) {
  await page.evaluate(([stop, how]) => {
    const list = document.getElementById('messages');
    window.__seen = [];
    window.__stopped = false;
    const obs = new MutationObserver(() => {
      const items = list.querySelectorAll('.msg-assistant');
      const last = items[items.length - 1];
      if (!last || last.dataset.status !== 'streaming') return;
      const t = last.querySelector('.bubble').textContent;
      if (window.__seen[window.__seen.length - 1] !== t) window.__seen.push(t);
      if (stop && !window.__stopped && t.length >= stop) {
        window.__stopped = true;
        window.__atStop = window.trilliumDemo.messages.at(-1).text; // the reply's text when Stop was pressed
        if (how === 'Escape') {
          document.getElementById('prompt').dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
        } else document.getElementById('btn-stop').click();
      }
    });
    obs.observe(list, { subtree: true, childList: true, characterData: true });
    window.__obs = obs;
  }, [stopAfter, stopWith]);
  const box = page.locator('#prompt');
  await box.fill(text);
  await box.press('Enter');
  await page.locator('body[data-state="generating"]').waitFor({ state: 'attached', timeout: 5000 }).catch(() => {});
  await page.locator('body[data-state="ready"]').waitFor({ timeout });
  return page.evaluate(() => {
    window.__obs.disconnect();
    const items = document.querySelectorAll('#messages .msg-assistant');
    const last = items[items.length - 1];
    return {
      seen: window.__seen,
      atStop: window.__stopped ? window.__atStop : null,
      reply: window.trilliumDemo.messages.at(-1).text,
      text: last.querySelector('.bubble').textContent,
      status: last.dataset.status,
      meta: last.querySelector('.msg-meta').textContent,
      stats: window.trilliumDemo.model?.lastStats ?? null,
      live: {
        ttft: document.getElementById('l-ttft').textContent,
        tps: document.getElementById('l-tps').textContent,
        tokens: document.getElementById('l-tokens').textContent,
      },
    };
  });
}

/** The Cache Storage as the page sees it: cache names and the URLs in each. */
export function cacheContents(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) {
      const c = await caches.open(name);
      out[name] = [];
      for (const req of await c.keys()) {
        const res = await c.match(req);
        out[name].push({ url: req.url, sha: res.headers.get('x-trillium-sha256') });
      }
    }
    return out;
  });
}
