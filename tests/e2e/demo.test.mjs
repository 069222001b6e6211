// The demo in a real headless Chromium: chat with streaming, stop, offline from
// the service worker's cache, variant picking on a small device, the threaded
// build under cross-origin isolation (server headers and service-worker
// headers), phone width + keyboard, errors, safe Markdown, and updates of the
// app and of a pack under an open chat. Screenshots of each state go to
// test-artifacts/e2e/.
//
//   node --test tests/e2e/          (make test-e2e installs Chromium and playwright-core first)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { cacheContents, convertPack, launch, send, serveSite, shot, stories260K, waitModel, waitReady, watch, withPage } from './harness.mjs';

const noErrors = (errors) => assert.deepEqual(errors, [], `the page logged errors:\n${errors.join('\n')}`);
const swVersion = (page) =>
  page.evaluate(
    () =>
      new Promise((resolve) => {
        const ch = new MessageChannel();
        ch.port1.onmessage = (e) => resolve(e.data.version);
        navigator.serviceWorker.controller.postMessage({ type: 'version' }, [ch.port2]);
      }),
  );

describe('chat, stop, offline (one visit, then the network off)', () => {
  let site;
  let ctx;
  let page;
  let errors;
  before(async () => {
    site = await serveSite();
    ctx = await launch();
    page = await ctx.newPage();
    errors = watch(page);
  });
  after(async () => {
    await ctx?.close();
    await site?.close();
  });

  test('loads the default pack and streams a reply token by token', async () => {
    await page.goto(site.url);
    await waitReady(page);
    assert.match(await page.locator('#f-pack').textContent(), /stories260K/);
    assert.equal(await page.locator('#tiers .tier').count(), 1, 'one tier bar for the one-tier default pack');
    assert.match(await page.locator('#tiers .tier-bytes').textContent(), /✓/);
    await shot(page, '01-loaded');

    const r = await send(page, 'Once upon a time');
    assert.equal(r.status, 'done');
    assert.ok(r.text.trim().length > 20, `a real reply, got ${JSON.stringify(r.text)}`);
    assert.ok(r.seen.length >= 3, `the reply grew in at least 3 steps while streaming (saw ${r.seen.length})`);
    for (let i = 1; i < r.seen.length; i++) {
      assert.ok(r.seen[i].startsWith(r.seen[i - 1]) && r.seen[i].length > r.seen[i - 1].length, 'each streamed state extends the last');
    }
    assert.ok(r.stats.generatedTokens > 0);
    assert.match(r.live.ttft, /^\d+(\.\d+)? (ms|s)$/, 'time to first token shown');
    assert.match(r.live.tps, /^\d+(\.\d+)? tokens\/s$/, 'tokens/s shown');
    assert.match(r.meta, /tokens · .* tokens\/s · first token/);
    await shot(page, '02-reply');

    // A second message continues the same text: the KV cache keeps the part already seen.
    const r2 = await send(page, 'Then a big dog came.');
    assert.equal(r2.status, 'done');
    assert.ok(r2.stats.promptTokens > r.stats.promptTokens + r.stats.generatedTokens - 5, 'the history is in the prompt');
    assert.ok(r2.stats.evaluatedPromptTokens < r2.stats.promptTokens, 'the cached prefix was reused');
    assert.equal(await page.locator('#messages .msg').count(), 4);
    noErrors(errors);
  });

  test('stops mid-generation with the Stop button and with Escape', async () => {
    await page.locator('#s-maxtokens').fill('400');
    await page.locator('#s-temperature').fill('1');
    // stories260K writes thousands of tokens/s: a story can reach its end before the Stop
    // request reaches the worker. Such a run says nothing about Stop, so it is tried again
    // with another prompt (a Stop that never works still fails all three tries).
    const sendAndStop = async (prompts, opts) => {
      let r;
      for (const p of prompts) {
        r = await send(page, p, opts);
        if (r.status !== 'done') break;
      }
      return r;
    };
    const r = await sendAndStop(['Lily saw a cat', 'The dog ran to the park', 'Sam and Mia'], { stopAfter: 12 });
    assert.equal(r.status, 'stopped');
    assert.match(r.meta, /stopped/);
    assert.equal(r.reply, r.atStop, 'nothing was added after Stop');
    assert.ok(r.reply.length > 0);
    assert.equal(await page.locator('#btn-stop').isHidden(), true, 'Stop is hidden again');
    assert.equal(await page.locator('#btn-send').isEnabled(), true, 'Send is back');
    await shot(page, '03-stopped');

    const e = await sendAndStop(['Tim had a red ball', 'The sun was big', 'Ben found a box'],
      { stopAfter: 12, stopWith: 'Escape' });
    assert.equal(e.status, 'stopped');
    assert.equal(e.reply, e.atStop, 'nothing was added after Escape');
    // and the model is usable again at once
    const again = await send(page, 'The end.', {});
    assert.ok(['done'].includes(again.status));
    noErrors(errors);
  });

  test('reloads and chats with the network off, from the service worker cache', async () => {
    await page.locator('body[data-offline-ready="true"]').waitFor({ timeout: 30000 });
    const caches = await cacheContents(page);
    const shellName = Object.keys(caches).find((k) => k.startsWith('trillium-shell-'));
    assert.ok(shellName, `a shell cache exists (${Object.keys(caches)})`);
    const shell = caches[shellName].map((e) => e.url);
    for (const f of ['index.html', 'app.js', 'trillium/src/index.js', 'trillium/dist/trillium.wasm']) {
      assert.ok(shell.some((u) => u.endsWith('/' + f)), `${f} is in the shell cache`);
    }
    const mt = site.build.wasms.filter((w) => w !== 'trillium.wasm');
    for (const w of mt) assert.ok(shell.some((u) => u.endsWith('/trillium/dist/' + w)), `the threaded build ${w} is precached too`);
    const manifest = JSON.parse(readFileSync(join(site.dir, 'packs/stories260K/manifest.json'), 'utf8'));
    const packs = caches['trillium-packs'] ?? [];
    for (const c of manifest.chunks) {
      const hit = packs.find((e) => e.url.endsWith('/packs/stories260K/' + c.file));
      assert.ok(hit, `${c.file} is cached`);
      assert.equal(hit.sha, c.sha256, `${c.file} is cached with the manifest's sha256`);
    }
    const before = await page.locator('#messages .msg').count();

    await ctx.setOffline(true);
    await site.close();
    const res = await page.reload();
    assert.ok(res.fromServiceWorker(), 'the page itself came from the service worker');
    await waitReady(page);
    assert.equal(await page.locator('#badge-offline').isVisible(), true, 'the Offline badge shows');
    assert.equal(await page.locator('#messages .msg').count(), before, 'the conversation survived the reload');
    await page.locator('#btn-new').click();
    const r = await send(page, 'Once upon a time');
    assert.equal(r.status, 'done');
    assert.ok(r.text.trim().length > 10);
    await shot(page, '04-offline-chat');

    // A pack never loaded online cannot come from the cache: say so and what to do.
    await page.evaluate(() => window.trilliumDemo.loadPack('packs/never-loaded/', 'auto'));
    const s = await waitModel(page);
    assert.equal(s.state, 'error');
    assert.equal(s.error.title, 'You are offline');
    assert.match(s.error.hint, /Reconnect/);
    await shot(page, '05-offline-error');
    noErrors(errors.filter((e) => !/never-loaded|Failed to load resource|TrilliumError/.test(e)));
  });
});

// What the page can learn of the device, overridden: navigator.deviceMemory
// (0.25 GiB, the API's smallest value) and Chrome's performance.memory, whose
// jsHeapSizeLimit is the memory the browser allows one page.
const smallDevice = (ctx, limit) =>
  ctx.addInitScript((bytes) => {
    Object.defineProperty(Navigator.prototype, 'deviceMemory', { get: () => 0.25, configurable: true });
    Object.defineProperty(Performance.prototype, 'memory', {
      get: () => ({ jsHeapSizeLimit: bytes, totalJSHeapSize: 8e6, usedJSHeapSize: 4e6 }),
      configurable: true,
    });
  }, limit);

describe('variant picking by memory budget', () => {
  let site;
  let pack;
  let ranked;
  before(async () => {
    // stories260K factorised by SVD into rank slices: 3 variants over 3 tiers.
    pack = convertPack('stories260K-lowrank', ['--lowrank', '1.0,0.5,0.25', '--chunk-mb', '1']);
    site = await serveSite({ packs: [{ name: 'stories260K-lowrank', dir: pack }, { name: 'stories260K', dir: await stories260K() }] });
    // The variants by the package's own peak estimate, smallest first (no cache: nothing to keep).
    const info = await Trillium.inspect(pack, { cache: false });
    ranked = info.variants.map((v) => ({ id: v.id, tiers: v.tiers, peak: v.peak.bytes })).sort((a, b) => a.peak - b.peak);
    assert.equal(ranked.length, 3);
  });
  after(() => site?.close());

  test('a normal device gets the largest variant, all its tiers shown', async () => {
    await withPage(async ({ page, errors }) => {
      await page.goto(site.url);
      await waitReady(page);
      const info = await page.evaluate(() => window.trilliumDemo.info);
      assert.equal(info.variant, ranked[ranked.length - 1].id, 'the largest variant fits a 16 GiB device');
      assert.equal(await page.locator('#tiers .tier').count(), 3, 'a progress bar per tier');
      const v = await page.evaluate(() => window.trilliumDemo.model.variant);
      assert.ok(v.reason, 'the package says why');
      assert.equal(await page.locator('#f-reason').textContent(), v.reason, 'and the panel shows it');
      await shot(page, '06-variant-large-device');
      noErrors(errors);
    });
  });

  test('a slow network shows a progress bar per tier while the pack streams in', async () => {
    await withPage(async ({ ctx, page, errors }) => {
      // DevTools throttling covers the page and its workers (not a service worker: ?nosw).
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: 400 * 1024, uploadThroughput: 400 * 1024 });
      const largest = ranked[ranked.length - 1];
      await page.goto(site.url + '?nosw');
      // mid-download: tier 0 complete, a later tier still coming
      await page.waitForFunction(
        (n) => {
          const rows = [...document.querySelectorAll('#tiers .tier progress')];
          return rows.length === n && rows[0].value >= rows[0].max && rows[n - 1].value < rows[n - 1].max;
        },
        largest.tiers.length,
        { timeout: 60000, polling: 50 },
      );
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'loading');
      const bar = await page.evaluate(() => document.getElementById('status-progress').value);
      assert.ok(bar > 0 && bar < 1, `the overall bar is part way (${bar})`);
      assert.match(await page.locator('#status-detail').textContent(), /of 1\.\d+ MiB · chunk \d of 3/);
      assert.match(await page.locator('#tiers .tier-bytes').first().textContent(), /✓/);
      await shot(page, '06a-downloading-tiers');
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await waitReady(page);
      noErrors(errors);
    });
  });

  test('a small device (deviceMemory and performance.memory overridden) gets a smaller variant', async () => {
    // A budget between the smallest variant's peak and the next one's.
    const budget = Math.floor((ranked[0].peak + ranked[1].peak) / 2);
    await withPage(async ({ page, errors }) => {
      await page.goto(site.url);
      await waitReady(page);
      const seen = await page.evaluate(() => ({ dm: navigator.deviceMemory, info: window.trilliumDemo.info, variant: window.trilliumDemo.model.variant }));
      assert.equal(seen.dm, 0.25);
      assert.equal(seen.info.variant, ranked[0].id, `the smallest variant, the only one under a ${budget}-byte budget`);
      assert.equal(seen.variant.budgetBytes, budget, 'the budget is the simulated device’s');
      assert.equal(await page.locator('#tiers .tier').count(), ranked[0].tiers.length);
      assert.equal(await page.locator('#f-reason').textContent(), seen.variant.reason, 'the panel says why');
      const shown = `${(budget / 1048576).toFixed(1)} MiB (`;
      assert.ok((await page.locator('#d-budget').textContent()).startsWith(shown), `and shows the budget found (${shown}…)`);
      const r = await send(page, 'Once upon a time');
      assert.equal(r.status, 'done');
      await page.setViewportSize({ width: 1280, height: 1000 });
      await shot(page, '07-variant-small-device');
      noErrors(errors);
    }, { setup: (ctx) => smallDevice(ctx, budget) });
  });

  test('a device too small for any variant says so and offers the smallest', async () => {
    await withPage(async ({ page }) => {
      await page.goto(site.url);
      const s = await waitModel(page);
      assert.equal(s.state, 'error');
      assert.equal(s.error.code, 'NO_MEMORY');
      assert.equal(s.error.title, 'Not enough memory for this model');
      assert.equal(await page.locator('#btn-retry').textContent(), `Load ${ranked[0].id} instead`);
      await shot(page, '07b-no-memory');
      await page.locator('#btn-retry').click();
      await waitReady(page);
      assert.equal(await page.evaluate(() => window.trilliumDemo.info.variant), ranked[0].id);
    }, { setup: (ctx) => smallDevice(ctx, Math.floor(ranked[0].peak / 2)) });
  });

  test('another variant can be picked by hand', async () => {
    await withPage(async ({ page }) => {
      await page.goto(site.url);
      await waitReady(page);
      await page.locator('#variant-select').selectOption(ranked[1].id);
      await page.locator('#btn-load').click();
      await waitReady(page);
      assert.equal(await page.evaluate(() => window.trilliumDemo.info.variant), ranked[1].id);
      assert.equal(await page.locator('#f-reason').textContent(), 'picked by you');
      assert.match(page.url(), new RegExp(`variant=${ranked[1].id.replace('.', '\\.')}`), 'the choice is kept in the URL');
      // and another pack by URL
      await page.locator('#pack-url').fill('packs/stories260K/');
      await page.locator('#variant-select').selectOption('auto');
      await page.locator('#btn-load').click();
      await waitReady(page);
      assert.equal(await page.evaluate(() => window.trilliumDemo.info.name), 'stories260K');
    });
  });
});

describe('cross-origin isolation and the threaded build', () => {
  const mtRequested = (urls) => urls.some((u) => /\/trillium-mt[^/]*\.wasm$/.test(u));
  // The URLs the page and its workers fetch (not the service worker's precache).
  const pageRequests = (ctx) => {
    const urls = [];
    ctx.on('request', (r) => {
      if (!r.serviceWorker()) urls.push(r.url());
    });
    return urls;
  };

  test('server COOP/COEP headers: the page is isolated and runs trillium-mt', async () => {
    const site = await serveSite({ isolation: true });
    try {
      await withPage(async ({ ctx, page, errors }) => {
        const urls = pageRequests(ctx);
        const res = await page.goto(site.url);
        assert.equal(res.headers()['cross-origin-opener-policy'], 'same-origin');
        await waitReady(page);
        assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
        assert.ok(site.build.wasms.some((w) => w.startsWith('trillium-mt')), 'web/dist has the threaded build (trillium-mt.wasm)');
        assert.ok(mtRequested(urls), `the threaded build was fetched (wasm fetched: ${urls.filter((u) => /\.wasm$/.test(u)).join(', ')})`);
        assert.equal(await page.evaluate(() => window.trilliumDemo.info.build), 'pthreads', 'the package reports the threaded build');
        assert.equal(await page.evaluate(() => document.body.dataset.build), 'threaded', 'and the page shows it');
        const r = await send(page, 'Once upon a time');
        assert.equal(r.status, 'done');
        await shot(page, '08-threaded-build');
        noErrors(errors);
      });
  } finally {
      await site.close();
    }
  });

  test('no server headers: the service worker supplies them (after one reload)', async () => {
    const site = await serveSite({ isolation: false });
    try {
      await withPage(async ({ ctx, page, errors }) => {
        const urls = pageRequests(ctx);
        const docs = [];
        page.on('response', (r) => {
          if (r.request().resourceType() === 'document') docs.push(r);
        });
        const res = await page.goto(site.url);
        assert.equal(res.headers()['cross-origin-opener-policy'], undefined, 'the server sends no COOP');
        await waitReady(page);
        const last = docs[docs.length - 1];
        assert.ok(last.fromServiceWorker(), 'the page was reloaded under the service worker');
        assert.equal(last.headers()['cross-origin-opener-policy'], 'same-origin');
        assert.equal(last.headers()['cross-origin-embedder-policy'], 'require-corp');
        assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'isolated through the worker’s headers');
        assert.ok(mtRequested(urls), 'the threaded build was fetched');
        assert.equal(await page.evaluate(() => window.trilliumDemo.info.build), 'pthreads', 'the package reports the threaded build');
        assert.equal(await page.evaluate(() => document.body.dataset.build), 'threaded', 'and the page shows it');
        const r = await send(page, 'Once upon a time');
        assert.equal(r.status, 'done');
        noErrors(errors);
      });
  } finally {
      await site.close();
    }
  });
});

describe('phone width, keyboard, errors, safe rendering', () => {
  let site;
  before(async () => {
    site = await serveSite();
  });
  after(() => site?.close());

  test('a 390 px phone: no sideways scrolling, the panel opens as a sheet', async () => {
    await withPage(async ({ page, errors }) => {
      await page.goto(site.url);
      await waitReady(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
      assert.ok(overflow <= 0, `no horizontal overflow (${overflow}px)`);
      await shot(page, '09-phone-empty');
      const r = await send(page, 'Once upon a time');
      assert.equal(r.status, 'done');
      assert.ok((await page.evaluate(() => document.documentElement.scrollWidth - innerWidth)) <= 0);
      await shot(page, '10-phone-reply');
      await page.locator('#btn-panel').click();
      await page.waitForFunction(() => getComputedStyle(document.getElementById('side')).transform === 'none'); // slid in
      assert.equal(await page.locator('#btn-panel-close').isVisible(), true);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'btn-panel-close', 'focus moves into the sheet');
      await shot(page, '11-phone-panel');
      await page.keyboard.press('Escape');
      assert.equal(await page.locator('#btn-panel').getAttribute('aria-expanded'), 'false', 'Escape closes it');
      noErrors(errors);
    }, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  });

  test('keyboard only: skip link, Enter sends, Shift+Enter adds a line, focus is visible', async () => {
    await withPage(async ({ page }) => {
      await page.goto(site.url);
      await waitReady(page);
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'prompt', 'the skip link lands in the message box');
      await page.keyboard.type('Once upon');
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.type('a time');
      assert.equal(await page.locator('#prompt').inputValue(), 'Once upon\na time');
      await page.keyboard.press('Enter');
      await page.locator('body[data-state="ready"]').waitFor();
      assert.equal(await page.locator('#messages .msg-user').count(), 1);
      // Tab from the message box reaches Send, and the focus ring is drawn
      await page.locator('#prompt').focus();
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'btn-send');
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.equal(outline, 'solid', 'a visible focus outline');
      await shot(page, '12-keyboard-focus');
    });
  });

  test('a bad pack URL shows the error and what to do; the default pack loads again', async () => {
    await withPage(async ({ page }) => {
      await page.goto(site.url + '?pack=packs/no-such-pack/');
      const s = await waitModel(page);
      assert.equal(s.state, 'error');
      assert.equal(s.error.code, 'MISSING_FILE');
      assert.match(await page.locator('#error-hint').textContent(), /manifest\.json/);
      assert.equal(await page.locator('#prompt').isDisabled(), true);
      await shot(page, '13-error-bad-pack');
      await page.locator('#btn-default-pack').click();
      await waitReady(page);
    });
  });

  test('model output is rendered as Markdown without any HTML getting through', async () => {
    await withPage(async ({ page }) => {
      await page.goto(site.url + '?nosw');
      await waitReady(page);
      const r = await page.evaluate(async () => {
        const { renderMarkdown } = await import('./lib/markdown.js');
        window.__pwned = 0;
        const hostile = [
          '# Title', '', 'Some **bold**, *em*, `<b>code</b>` and [a link](https://example.com).',
          '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>',
          '[click](javascript:window.__pwned=3) <a href="javascript:alert(1)">x</a>',
          '', '```html', '<script>window.__pwned=4</script>', '```', '', '- one', '- two',
        ].join('\n');
        const box = document.createElement('div');
        box.append(renderMarkdown(hostile));
        await new Promise((res) => setTimeout(res, 200));
        return {
          pwned: window.__pwned,
          tags: [...box.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()),
          onAttrs: [...box.querySelectorAll('*')].flatMap((e) => [...e.attributes].map((a) => a.name)).filter((n) => n.startsWith('on')),
          links: [...box.querySelectorAll('a')].map((a) => a.getAttribute('href')),
          text: box.textContent,
        };
      });
      assert.equal(r.pwned, 0);
      for (const t of ['img', 'script', 'b']) assert.ok(!r.tags.includes(t), `no <${t}> element`);
      assert.deepEqual(r.onAttrs, []);
      assert.deepEqual(r.links, ['https://example.com']);
      for (const t of ['h3', 'strong', 'em', 'code', 'pre', 'ul', 'li']) assert.ok(r.tags.includes(t), `<${t}> rendered`);
      assert.match(r.text, /<img src=x onerror=/, 'the HTML shows as text');
    });
  });
});

describe('updates of the app and of a pack under an open chat', () => {
  test('the open chat keeps working; the update replaces the cached copies', async () => {
    const site = await serveSite({ tag: 'v1' });
    try {
      await withPage(async ({ page, errors }) => {
        await page.goto(site.url);
        await waitReady(page);
        await page.locator('body[data-offline-ready="true"]').waitFor({ timeout: 30000 });
        const v1 = site.build.version;
        assert.equal(await swVersion(page), v1);
        const r1 = await send(page, 'Once upon a time');
        assert.equal(r1.status, 'done');
        const oldSha = JSON.parse(readFileSync(join(site.dir, 'packs/stories260K/manifest.json'), 'utf8')).chunks.map((c) => c.sha256);

        // New app version and a new pack at the same URL (converted to f16: other bytes, same files).
        const f16 = convertPack('stories260K', ['--dtype', 'f16']);
        site.rebuild({ tag: 'v2', packs: [{ name: 'stories260K', dir: f16 }] });
        const newManifest = JSON.parse(readFileSync(join(site.dir, 'packs/stories260K/manifest.json'), 'utf8'));
        assert.notDeepEqual(newManifest.chunks.map((c) => c.sha256), oldSha);
        await page.evaluate(() => window.trilliumDemo.checkForUpdates());
        await page.locator('#banner').waitFor({ state: 'visible', timeout: 30000 });
        await page.locator('body[data-update="app"]').waitFor({ timeout: 30000 });
        // The chat in the open page is untouched and still generates.
        const r2 = await send(page, 'Then a dog came.');
        assert.equal(r2.status, 'done');
        assert.equal(await swVersion(page), v1, 'the old worker still serves the open page');
        await shot(page, '14-update-ready');

        await Promise.all([page.waitForEvent('framenavigated'), page.locator('#banner-action').click()]);
        await waitReady(page);
        assert.equal(await swVersion(page), site.build.version, 'the new version is active after the reload');
        assert.equal(await page.locator('#messages .msg').count(), 4, 'the conversation is kept across the update');
        await page.locator('body[data-offline-ready="true"]').waitFor({ timeout: 30000 });
        const caches = await cacheContents(page);
        const shells = Object.keys(caches).filter((k) => k.startsWith('trillium-shell-'));
        assert.deepEqual(shells, [`trillium-shell-${site.build.version}`], 'the old shell cache is gone');
        const chunks = caches['trillium-packs'].filter((e) => !e.url.endsWith('/manifest.json'));
        assert.deepEqual(chunks.map((e) => e.sha).sort(), newManifest.chunks.map((c) => c.sha256).sort(), 'only the new chunks are cached');
        assert.match(await page.locator('#f-size').textContent(), /f16/);
        await shot(page, '15-updated');
        noErrors(errors);
      });
  } finally {
      await site.close();
    }
  });
});
