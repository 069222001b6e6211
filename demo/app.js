// The Trillium chat demo: plain ES modules over the trillium package
// (./trillium/src, copied from web/ by build.mjs), no framework, no bundler.
//
// URL parameters: ?pack=URL (a pack directory) &variant=ID|auto, &nosw (no service worker).
import { Trillium } from './trillium/src/index.js';
import { renderMarkdown } from './lib/markdown.js';

const $ = (id) => document.getElementById(id);
const KEY = 'trillium-demo:';
const DEFAULT_PACK = 'packs/stories260K/';
const DEFAULT_SETTINGS = Object.freeze({ temperature: 0.8, topP: 0.95, maxTokens: 200, system: '' });
const params = new URLSearchParams(location.search);
const swSupported = 'serviceWorker' in navigator && !params.has('nosw');
const controlledAtStart = swSupported && !!navigator.serviceWorker.controller;

// Everything the page knows; also `window.trilliumDemo` for the console and the e2e tests.
const state = {
  config: { packs: [] },
  model: null,
  info: null,
  pack: null, // Trillium.inspect() of the loaded (or loading) pack
  packUrl: null,
  variantWanted: 'auto',
  loading: null, // AbortController of the load in progress
  gen: null, // { ac, done } of the generation in progress
  messages: [],
  settings: { ...DEFAULT_SETTINGS },
  lastError: null,
  updates: { app: false, pack: false },
  registration: null,
  loadPack: (url, variant) => loadPack(url, variant),
  checkForUpdates: () => checkForUpdates(),
};
window.trilliumDemo = state;

// ---- persistence ------------------------------------------------------------

function restore() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY + 'settings') || 'null');
    if (s && typeof s === 'object') state.settings = sanitizeSettings({ ...DEFAULT_SETTINGS, ...s });
    const m = JSON.parse(localStorage.getItem(KEY + 'chat') || 'null');
    if (Array.isArray(m)) {
      state.messages = m
        .filter((x) => x && (x.role === 'user' || x.role === 'assistant') && typeof x.text === 'string')
        // a reply cut short by a reload is shown as stopped
        .map((x) => (x.status === 'streaming' ? { ...x, status: 'stopped' } : x));
    }
  } catch {
    // storage unavailable or corrupt: start fresh
  }
}

function save() {
  try {
    localStorage.setItem(KEY + 'settings', JSON.stringify(state.settings));
    localStorage.setItem(KEY + 'chat', JSON.stringify(state.messages));
  } catch {
    // private mode or full: the chat just is not kept
  }
}

function sanitizeSettings(s) {
  const num = (v, lo, hi, d) => (Number.isFinite(Number(v)) ? Math.min(hi, Math.max(lo, Number(v))) : d);
  return {
    temperature: num(s.temperature, 0, 2, DEFAULT_SETTINGS.temperature),
    topP: num(s.topP, 0.05, 1, DEFAULT_SETTINGS.topP),
    maxTokens: Math.round(num(s.maxTokens, 1, 4096, DEFAULT_SETTINGS.maxTokens)),
    system: typeof s.system === 'string' ? s.system : '',
  };
}

// ---- formatting -------------------------------------------------------------

function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;
  if (n < 1073741824) return `${(n / 1048576).toFixed(n < 10485760 ? 2 : 1)} MiB`;
  return `${(n / 1073741824).toFixed(2)} GiB`;
}
const fmtMs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);
function fmtCount(n) {
  for (const [u, s] of [[1e9, 'B'], [1e6, 'M'], [1e3, 'K']]) {
    if (n >= u) return `${(n / u).toFixed(n / u >= 100 ? 0 : 1)}${s}`;
  }
  return String(n);
}

// ---- page state -------------------------------------------------------------

function setState(s) {
  document.body.dataset.state = s;
  const ready = s === 'ready';
  const generating = s === 'generating';
  $('prompt').disabled = !(ready || generating);
  $('prompt').placeholder = ready || generating ? placeholderText() : s === 'error' ? 'No model loaded' : 'Loading the model…';
  $('btn-send').disabled = !ready;
  $('btn-send').hidden = generating;
  $('btn-stop').hidden = !generating;
  for (const c of document.querySelectorAll('.chip')) c.disabled = !ready;
  $('status-loading').hidden = s !== 'loading' && s !== 'starting';
  $('status-error').hidden = s !== 'error';
}

function placeholderText() {
  return chatMode() ? 'Message the model…' : 'Start a story, or add to it…';
}

function showLoading(title, detail = '', fraction = null) {
  $('status-title').textContent = title;
  $('status-detail').textContent = detail;
  const bar = $('status-progress');
  if (fraction === null) bar.removeAttribute('value');
  else bar.value = Math.max(0, Math.min(1, fraction));
}

// Errors a user can meet, with what to do about them.
function describeError(e) {
  const code = e?.code;
  const message = e?.message || String(e);
  const offline = !navigator.onLine;
  const hints = {
    NO_SIMD: ['This browser cannot run the model', 'Trillium needs WebAssembly SIMD: use a current Chrome, Edge, Firefox or Safari (16.4 or later).'],
    MISSING_FILE: ['A file of the pack is missing', 'Check the pack URL: it must be the directory that holds manifest.json (ending in /). If it is right, the upload is incomplete: upload the whole pack again.'],
    IO: offline
      ? ['You are offline', 'This model (or this variant of it) was never loaded while online, so it is not in the offline copy. Reconnect and load it once; after that it works offline.']
      : ['The download failed', 'Check your connection and the pack URL, then try again. A pack on another site must be served with CORS (Access-Control-Allow-Origin).'],
    SHA_MISMATCH: ['The pack is damaged', 'A chunk does not match the checksum in manifest.json (a partial upload or a stale CDN copy). Upload the pack again, or try later.'],
    SIZE_MISMATCH: ['The pack is damaged', 'A chunk does not have the size manifest.json gives (a partial upload or a stale CDN copy). Upload the pack again, or try later.'],
    BAD_PACK: ['This is not a pack Trillium can read', 'Convert the model again with trillium-convert and upload the new pack.'],
    UNSUPPORTED_VERSION: ['The pack and this demo do not match', 'The message says which side is newer: update the demo, or convert the model again with this version of trillium-convert.'],
    NO_MEMORY: ['Not enough memory for this model', 'Pick a smaller variant in “Load a model”, close other tabs, or use a device with more memory.'],
    WASM: ['The WebAssembly module did not load', 'Reload the page. If it keeps failing, this browser may be too old: use a current Chrome, Edge, Firefox or Safari.'],
    BAD_ARGUMENT: ['That did not work', 'Check the pack URL and the settings, then try again.'],
    TOO_LONG: ['The message is too long', 'Shorten it, lower “Max tokens per reply”, or start a new chat.'],
  };
  const [title, hint] = hints[code] ?? ['Something went wrong', offline ? 'You are offline: reconnect and try again.' : 'Try again. If it keeps happening, reload the page.'];
  return { title, message, hint, code: code ?? null };
}

function showError(e, retry) {
  const d = describeError(e);
  state.lastError = d;
  $('error-title').textContent = d.title;
  $('error-message').textContent = d.message;
  $('error-hint').textContent = d.hint;
  $('empty-text').textContent = 'No model is loaded: see above for why and what to do.';
  if (!state.model) $('f-variant').textContent = '–';
  // Out of memory with a smaller variant to offer: the retry loads that one.
  const smaller = e?.code === 'NO_MEMORY' && e.suggestedVariant;
  $('btn-retry').textContent = smaller ? `Load ${smaller} instead` : 'Try again';
  $('btn-retry').onclick = smaller ? () => loadPack(state.packUrl, smaller) : retry;
  const isDefault = state.config.packs.length && new URL(defaultPackUrl(), location.href).href === new URL(state.packUrl ?? '', location.href).href;
  $('btn-default-pack').hidden = !!isDefault && state.variantWanted === 'auto';
  setState('error');
}

function defaultPackUrl() {
  return state.config.packs[0]?.url || DEFAULT_PACK;
}

// ---- device -----------------------------------------------------------------

const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
const simdSupported = () => typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);

function showDevice() {
  const dm = navigator.deviceMemory;
  $('d-memory').textContent = dm ? `${dm} GiB (as the browser reports it)` : 'not reported by this browser';
  $('d-cores').textContent = navigator.hardwareConcurrency ? String(navigator.hardwareConcurrency) : 'not reported';
  $('d-isolation').textContent = self.crossOriginIsolated
    ? 'cross-origin isolated: SharedArrayBuffer and threads available'
    : 'not isolated: the single-thread build runs';
  const info = state.info;
  const v = state.model?.variant; // {budgetBytes, budgetReason, ...} where the package reports them
  $('d-budget').textContent = v?.budgetBytes
    ? `${fmtBytes(v.budgetBytes)} (${v.budgetReason})`
    : !info ? '–' : v && 'budgetBytes' in v ? 'not needed: the variant was not picked by memory' : 'not reported by this trillium version';
  // The package picks the build (and may run it in a worker the page cannot see into): as it reports it.
  const build = info?.build ? (info.build === 'pthreads' ? 'threaded' : 'single') : null;
  const threads = info?.threads ?? null;
  $('d-build').textContent =
    build === 'threaded' ? `SIMD + ${threads ?? 'several'} threads (trillium-mt)` : build === 'single' ? `SIMD, one thread (trillium.wasm)${info.threadsNote ? `: ${info.threadsNote}` : ''}` : info ? 'not reported by this trillium version' : '–';
  const badge = $('badge-build');
  badge.hidden = !build;
  badge.textContent = build === 'threaded' ? `SIMD · ${threads ?? 'multi'} threads` : 'SIMD · 1 thread';
  document.body.dataset.build = build ?? '';
}

function pageDevice() {
  const d = {};
  if (navigator.deviceMemory > 0) d.deviceMemory = navigator.deviceMemory;
  const limit = performance.memory?.jsHeapSizeLimit;
  if (limit > 0) d.jsHeapSizeLimit = limit;
  return d;
}

function updateOnline() {
  $('badge-offline').hidden = navigator.onLine;
  document.body.dataset.online = String(navigator.onLine);
}

// ---- loading a pack -----------------------------------------------------------

const tierState = { files: new Map(), lastLoaded: 0, shown: null };

function tierTotals(pack, tiers) {
  return tiers.map((t) => ({ tier: t, bytes: pack.chunks.filter((c) => c.tier === t).reduce((s, c) => s + c.bytes, 0) }));
}

function renderTierBars(pack, tiers) {
  const key = tiers.join(',');
  if (tierState.shown === key) return;
  tierState.shown = key;
  const box = $('tiers');
  box.replaceChildren();
  for (const { tier, bytes } of tierTotals(pack, tiers)) {
    const row = document.createElement('div');
    row.className = 'tier';
    row.dataset.tier = String(tier);
    const label = document.createElement('span');
    label.textContent = `Tier ${tier}`;
    const bar = document.createElement('progress');
    bar.max = Math.max(1, bytes);
    bar.value = 0;
    bar.setAttribute('aria-label', `Tier ${tier} download`);
    const txt = document.createElement('span');
    txt.className = 'tier-bytes';
    txt.textContent = `0 of ${fmtBytes(bytes)}`;
    row.append(label, bar, txt);
    box.append(row);
  }
  updateTierBars(pack);
}

function updateTierBars(pack) {
  for (const row of $('tiers').querySelectorAll('.tier')) {
    const t = Number(row.dataset.tier);
    let got = 0;
    let all = 0;
    for (const c of pack.chunks) {
      if (c.tier !== t) continue;
      all += c.bytes;
      got += Math.min(c.bytes, tierState.files.get(c.file) ?? 0);
    }
    row.querySelector('progress').value = got;
    row.querySelector('.tier-bytes').textContent = got >= all ? `${fmtBytes(all)} ✓` : `${fmtBytes(got)} of ${fmtBytes(all)}`;
  }
}

function onProgress(p, pack, variant) {
  if (p.file) {
    // `loaded` is cumulative (and steps back when a chunk is fetched again): credit the difference to this file.
    const d = p.loaded - tierState.lastLoaded;
    tierState.files.set(p.file, Math.max(0, (tierState.files.get(p.file) ?? 0) + d));
  }
  tierState.lastLoaded = p.loaded;
  if (!tierState.shown) {
    // With 'auto' the package picks the variant: the one it names, else the one whose download this is.
    const id = p.variant ?? (variant === 'auto' ? null : variant);
    const v = id ? pack.variants.filter((x) => x.id === id) : pack.variants.filter((x) => x.downloadBytes === p.total);
    if (v.length === 1) renderTierBars(pack, v[0].tiers);
  }
  updateTierBars(pack);
  const name = pack.name ?? 'the model';
  showLoading(
    `Downloading ${name}…`,
    `${fmtBytes(p.loaded)} of ${fmtBytes(p.total)} · chunk ${Math.min(p.chunksDone + (p.file && p.chunksDone < p.chunks ? 1 : 0), p.chunks)} of ${p.chunks}`,
    p.total ? p.loaded / p.total : null,
  );
}

// The service worker keeps packs for offline use (and replaces them when they
// change): the package's own download cache would be a second, stale-able copy.
// Offline, a file the worker does not have will not come by retrying: fail at once.
const cacheOpts = () => ({ ...(state.registration ? { cache: false } : {}), ...(navigator.onLine ? {} : { retries: 0 }) });

// dispose() is a promise when the model runs in a worker; the heap goes either way.
const release = (model) => Promise.resolve().then(() => model.dispose()).catch(() => {});

async function loadPack(url, variant = 'auto') {
  // The page shows the load at once, before the running reply and the old model are gone.
  state.loading?.abort();
  const ac = new AbortController();
  state.loading = ac;
  setState('loading');
  showLoading('Reading the pack…', url);
  await stopGeneration();
  if (state.model) {
    const old = state.model;
    state.model = null;
    state.info = null;
    await release(old);
  }
  if (ac.signal.aborted) return;
  state.packUrl = url;
  state.variantWanted = variant;
  state.pack = null;
  tierState.files.clear();
  tierState.lastLoaded = 0;
  tierState.shown = null;
  $('tiers').replaceChildren();
  $('pack-url').value = url;
  clearModelFacts();
  showDevice();
  try {
    if (!simdSupported()) throw Object.assign(new Error('WebAssembly SIMD is not supported here'), { code: 'NO_SIMD' });
    const pack = await Trillium.inspect(url, cacheOpts());
    if (ac.signal.aborted) return;
    state.pack = pack;
    fillVariantSelect(pack, variant);
    $('f-pack').textContent = `${pack.name ?? 'unnamed'} · format v${pack.formatVersion} · ${url}`;
    $('f-variant').textContent = variant === 'auto' && pack.variants.length > 1 ? `choosing among ${pack.variants.map((v) => v.id).join(', ')}…` : variant === 'auto' ? pack.variants[0].id : variant;
    $('empty-text').textContent = `Loading ${pack.name ?? 'the model'}…`;
    if (variant !== 'auto') {
      const v = pack.variants.find((x) => x.id === variant);
      if (v) renderTierBars(pack, v.tiers);
    }
    showLoading(`Downloading ${pack.name ?? 'the model'}…`, '', 0);
    const opts = {
      variant,
      signal: ac.signal,
      onProgress: (p) => onProgress(p, pack, variant),
      // the threaded build where the page is cross-origin isolated
      threads: 'auto',
      ...cacheOpts(),
      // what this page knows of the device, for the memory budget (a worker sees less: no performance.memory)
      device: pageDevice(),
    };
    const model = await Trillium.load(url, opts);
    if (ac.signal.aborted) {
      await release(model);
      return;
    }
    state.model = model;
    state.info = model.info;
    // Whatever the progress events said (chunks from a cache may report none), the loaded tiers are all in.
    const tiers = pack.variants.find((v) => v.id === model.info.variant)?.tiers ?? [];
    for (const c of pack.chunks) if (tiers.includes(c.tier)) tierState.files.set(c.file, c.bytes);
    renderTierBars(pack, tiers);
    updateTierBars(pack);
    showModelFacts();
    showDevice();
    setState('ready');
    rememberInUrl(url, variant);
    document.title = `${pack.name ?? 'Model'} · Trillium`;
    saveForOffline(url, pack, model.info.variant);
  } catch (e) {
    if (ac.signal.aborted) return;
    console.error(e);
    showError(e, () => loadPack(url, variant));
  } finally {
    if (state.loading === ac) state.loading = null;
  }
}

function fillVariantSelect(pack, selected) {
  const sel = $('variant-select');
  const auto = sel.options[0];
  sel.replaceChildren(auto);
  for (const v of pack.variants) {
    const o = document.createElement('option');
    o.value = v.id;
    o.textContent = `${v.id}: ${fmtBytes(v.downloadBytes)} download`;
    sel.append(o);
  }
  sel.value = pack.variants.some((v) => v.id === selected) ? selected : 'auto';
}

function rememberInUrl(url, variant) {
  const u = new URL(location.href);
  const isDefault = new URL(url, location.href).href === new URL(defaultPackUrl(), location.href).href;
  if (isDefault) u.searchParams.delete('pack');
  else u.searchParams.set('pack', url);
  if (variant === 'auto') u.searchParams.delete('variant');
  else u.searchParams.set('variant', variant);
  history.replaceState(null, '', u);
}

function clearModelFacts() {
  for (const id of ['f-pack', 'f-variant', 'f-reason', 'f-size', 'f-arch', 'f-memory', 'f-offline']) $(id).textContent = '–';
  $('f-offline').className = '';
  document.body.dataset.offlineReady = 'false';
}

function variantReason() {
  if (state.variantWanted !== 'auto') return 'picked by you';
  return state.model?.variant?.reason ?? (state.pack?.variants.length === 1 ? 'the only variant in this pack' : '–');
}

function showModelFacts() {
  const info = state.info;
  const pack = state.pack;
  const c = info.config;
  $('f-pack').textContent = `${info.name ?? 'unnamed'} · format v${info.formatVersion} · ${state.packUrl}`;
  $('f-variant').textContent = `${info.variant}${pack.variants.length > 1 ? ` (of ${pack.variants.map((v) => v.id).join(', ')})` : ''}`;
  $('f-reason').textContent = variantReason();
  const enc = Object.keys(pack.tensors.byEncoding).join(', ');
  $('f-size').textContent = `${fmtCount(c.n_params)} parameters · ${fmtBytes(info.downloadBytes)} download · ${enc}`;
  $('f-arch').textContent = `${c.arch}, ${c.n_layers} layers, dim ${c.dim}, ${c.n_heads} heads, vocab ${c.vocab_size}, context ${info.contextLength} tokens`;
  $('f-memory').textContent = `weights ${fmtBytes(info.weightBytes)} + context ${fmtBytes(info.contextBytes)}; wasm heap ${fmtBytes(info.heapBytes)}; loaded in ${fmtMs(info.loadMs)}`;
  $('empty-text').textContent = chatMode()
    ? `${info.name ?? 'This model'} is ready. Ask it something.`
    : `${info.name ?? 'This model'} continues text: give it the start of a story and it writes on. Each message adds to the story.`;
  $('prompt').placeholder = placeholderText();
}

async function saveForOffline(url, pack, variantId) {
  const el = $('f-offline');
  if (!state.registration) {
    el.textContent = swSupported ? 'not available (the offline worker did not start)' : 'not available in this browser';
    return;
  }
  el.textContent = 'saving for offline use…';
  const v = pack.variants.find((x) => x.id === variantId);
  const files = ['manifest.json', ...pack.chunks.filter((c) => v?.tiers.includes(c.tier)).map((c) => c.file)];
  try {
    const reg = await withTimeout(navigator.serviceWorker.ready, 20000, 'the offline worker did not start');
    const r = await swRequest(reg.active, { type: 'cache-pack', base: new URL(url, location.href).href, files }, 120000);
    if (state.packUrl !== url) return;
    if (!r.ok) throw new Error(r.error);
    el.textContent = `✓ saved: works offline (${fmtBytes(r.bytes)})`;
    el.className = 'good';
    document.body.dataset.offlineReady = 'true';
    navigator.storage?.persist?.().catch(() => {});
  } catch (e) {
    el.textContent = `not saved (${e?.message || e})`;
  }
}

// ---- service worker -------------------------------------------------------------

function withTimeout(p, ms, what) {
  return Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(what)), ms))]);
}

function swRequest(worker, msg, ms = 10000) {
  if (!worker) return Promise.reject(new Error('no active service worker'));
  return withTimeout(
    new Promise((resolve) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = (e) => resolve(e.data);
      worker.postMessage(msg, [ch.port2]);
    }),
    ms,
    'the offline worker did not answer',
  );
}

async function registerServiceWorker() {
  if (!swSupported) return null;
  let reg;
  try {
    reg = await navigator.serviceWorker.register('sw.js');
  } catch (e) {
    console.warn('service worker not registered:', e);
    return null;
  }
  state.registration = reg;
  const waiting = (w) => {
    if (w && navigator.serviceWorker.controller) showUpdate('app');
  };
  waiting(reg.waiting);
  reg.addEventListener('updatefound', () => {
    const w = reg.installing;
    w?.addEventListener('statechange', () => {
      if (w.state === 'installed') waiting(w);
    });
  });
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (state.updates.requested) location.reload();
  });
  navigator.serviceWorker.addEventListener('message', (e) => {
    if (e.data?.type === 'pack-updated') onPackUpdated(e.data.base);
  });
  return reg;
}

// A host that cannot send COOP/COEP gets them from the service worker, but
// only on pages it controls: on the first visit, reload once it is active.
async function reloadForIsolation(reg) {
  if (!reg || self.crossOriginIsolated || controlledAtStart) return false;
  if (sessionStorage.getItem(KEY + 'isolation-reload')) return false;
  showLoading('Preparing the offline copy…');
  const active = await withTimeout(
    new Promise((resolve) => {
      if (reg.active) return resolve(true);
      const w = reg.installing || reg.waiting;
      if (!w) return resolve(false);
      w.addEventListener('statechange', () => {
        if (w.state === 'activated') resolve(true);
        if (w.state === 'redundant') resolve(false);
      });
    }),
    30000,
    'timeout',
  ).catch(() => false);
  if (!active) return false;
  sessionStorage.setItem(KEY + 'isolation-reload', '1');
  location.reload();
  return true;
}

function showUpdate(kind) {
  state.updates[kind] = true;
  const { app, pack } = state.updates;
  $('banner-text').textContent = app
    ? `A new version of this demo${pack ? ' and of the model pack' : ''} is ready. Your chat is kept; reload when it suits you.`
    : 'A new version of this model pack is on the server. Your chat is kept.';
  $('banner-action').textContent = app ? 'Reload now' : 'Load it';
  $('banner').hidden = false;
  document.body.dataset.update = app ? 'app' : 'pack';
}

async function applyUpdate() {
  $('banner').hidden = true;
  if (state.updates.app) {
    await stopGeneration();
    save();
    const reg = state.registration;
    state.updates.requested = true;
    if (reg?.waiting) reg.waiting.postMessage({ type: 'skip-waiting' });
    else location.reload();
  } else if (state.updates.pack) {
    state.updates.pack = false;
    document.body.dataset.update = '';
    loadPack(state.packUrl, state.variantWanted);
  }
}

async function onPackUpdated(base) {
  if (!state.pack || state.loading || new URL(state.packUrl, location.href).href !== base) return;
  try {
    const fresh = await Trillium.inspect(state.packUrl, cacheOpts());
    const sig = (p) => JSON.stringify(p.chunks.map((c) => [c.file, c.sha256]));
    if (sig(fresh) !== sig(state.pack)) showUpdate('pack');
  } catch {
    // offline or unreachable: nothing to offer
  }
}

async function checkForUpdates() {
  await state.registration?.update().catch(() => {});
  if (state.pack && navigator.onLine) await onPackUpdated(new URL(state.packUrl, location.href).href);
}

// ---- chat -----------------------------------------------------------------------

const views = new WeakMap(); // message -> its <li>

function messageView(m) {
  let li = views.get(m);
  if (!li) {
    li = document.createElement('li');
    li.className = `msg msg-${m.role}`;
    const role = document.createElement('p');
    role.className = 'msg-role';
    const bubble = document.createElement('div');
    bubble.className = 'bubble';
    const meta = document.createElement('p');
    meta.className = 'msg-meta';
    li.append(role, bubble, meta);
    views.set(m, li);
  }
  return li;
}

function renderMessage(m) {
  const li = messageView(m);
  li.classList.toggle('streaming', m.status === 'streaming');
  li.dataset.status = m.status ?? '';
  const [role, bubble, meta] = li.children;
  role.textContent = m.role === 'user' ? 'You' : m.model || 'Model';
  if (m.role === 'user') bubble.textContent = m.text;
  else {
    const text = m.text.replace(/^\s+/, '');
    // A continuation that picks up mid-sentence (", there was...") is marked as one.
    bubble.replaceChildren(renderMarkdown(m.continues && /^[a-z,.;:!?)]/.test(text) ? '…' + text : text));
  }
  meta.replaceChildren();
  if (m.role === 'assistant') {
    const parts = [];
    if (m.stats) {
      parts.push(`${m.stats.tokens} tokens`);
      if (m.stats.tps) parts.push(`${m.stats.tps.toFixed(1)} tokens/s`);
      if (m.stats.ttft !== undefined) parts.push(`first token ${fmtMs(m.stats.ttft)}`);
    }
    meta.textContent = parts.join(' · ');
    if (m.status === 'stopped') meta.append(tag('stopped', parts.length ? ' · stopped' : 'stopped'));
    if (m.status === 'error') meta.append(tag('failed', `${parts.length ? ' · ' : ''}failed: ${m.error}`));
  }
  return li;
}

function tag(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

function renderAll() {
  const list = $('messages');
  list.replaceChildren(...state.messages.map(renderMessage));
  $('empty').hidden = state.messages.length > 0;
  scrollToEnd(true);
}

function scrollToEnd(force = false) {
  const list = $('messages');
  const near = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  if (force || near) list.scrollTop = list.scrollHeight;
}

let frame = 0;
function scheduleRender(m) {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    renderMessage(m);
    scrollToEnd();
  });
}

// A model without a chat template continues text: the conversation is one
// running text, each message appended to it. A model with one gets its
// template through model.chat(). Either way the whole history is sent each
// turn; the package reuses the KV cache for the part it has seen.
function joinText(a, b) {
  if (!a) return b;
  if (!b || /\s$/.test(a) || /^[\s,.;:!?)'"]/.test(b)) return a + b;
  return a + ' ' + b;
}

const chatMode = () => !!state.info?.tokenizer?.chatTemplate && typeof state.model?.chat === 'function';

// (tokenize and formatChat return promises when the model runs in a worker: awaited either way)
async function buildPrompt(history, maxTokens) {
  const model = state.model;
  const sys = state.settings.system.trim();
  const usable = history.filter((m) => m.text && m.status !== 'error');
  const chat = chatMode();
  const messagesOf = (msgs) => [...(sys ? [{ role: 'system', content: sys }] : []), ...msgs.map((m) => ({ role: m.role, content: m.text }))];
  const textOf = async (msgs) =>
    chat ? (await model.formatChat(messagesOf(msgs))).text : joinText(sys ? sys + '\n\n' : '', msgs.reduce((acc, m) => joinText(acc, m.text), ''));
  const limit = state.info.contextLength - Math.min(maxTokens, Math.floor(state.info.contextLength / 2));
  // Oldest turns go first when the context would overflow.
  for (let start = 0; start < usable.length; start++) {
    const kept = usable.slice(start);
    if (chat && kept[0].role !== 'user') continue;
    const text = await textOf(kept);
    const n = (await model.tokenize(text)).length;
    if (n <= limit) return { text, messages: chat ? messagesOf(kept) : null, tokens: n, dropped: start };
  }
  const n = (await model.tokenize(await textOf(usable.slice(-1)))).length;
  throw Object.assign(new Error(`the message is ${n} tokens; with room for the reply the model’s ${state.info.contextLength}-token context holds ${limit}`), { code: 'TOO_LONG' });
}

async function send(text) {
  text = text.trim();
  if (!text || !state.model || state.gen || state.loading) return;
  const s = state.settings;
  const user = { role: 'user', text };
  const bot = { role: 'assistant', text: '', status: 'streaming', model: state.info.name ?? 'Model', continues: !chatMode() };
  state.messages.push(user, bot);
  $('prompt').value = '';
  autoGrow();
  renderAll();
  save();
  const ac = new AbortController();
  let finish;
  state.gen = { ac, done: new Promise((r) => (finish = r)) };
  setState('generating');
  const t0 = performance.now();
  let tFirst = 0;
  let tLast = 0;
  let pieces = 0;
  let st = null; // the package's statistics (the generator's return value) for a reply that ran to its end
  const live = { ttft: $('l-ttft'), tps: $('l-tps'), tokens: $('l-tokens'), prompt: $('l-prompt') };
  live.ttft.textContent = '…';
  live.tps.textContent = '…';
  live.tokens.textContent = '0';
  try {
    const prompt = await buildPrompt(state.messages.slice(0, -1), s.maxTokens);
    live.prompt.textContent = `${prompt.tokens} tokens${prompt.dropped ? ` (${prompt.dropped} oldest messages left out)` : ''}`;
    const opts = { maxTokens: s.maxTokens, temperature: s.temperature, topP: s.topP, signal: ac.signal };
    const it = prompt.messages ? state.model.chat(prompt.messages, opts) : state.model.generate(prompt.text, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) {
        st = r.value;
        break;
      }
      // A model in a worker may have sent more pieces before the stop reached it: they are dropped.
      if (ac.signal.aborted) {
        await it.return?.();
        break;
      }
      const now = performance.now();
      if (!tFirst) {
        tFirst = now;
        live.ttft.textContent = fmtMs(tFirst - t0);
      }
      tLast = now;
      pieces++;
      bot.text += r.value;
      live.tokens.textContent = String(pieces);
      if (now - tFirst > 250) live.tps.textContent = `${((pieces - 1) / ((now - tFirst) / 1000)).toFixed(1)} tokens/s`;
      scheduleRender(bot);
    }
    bot.status = ac.signal.aborted ? 'stopped' : 'done';
  } catch (e) {
    if (ac.signal.aborted || e?.name === 'AbortError') bot.status = 'stopped';
    else {
      bot.status = 'error';
      const d = describeError(e);
      bot.error = `${d.message}. ${d.hint}`;
      console.error(e);
    }
  } finally {
    const ttft = tFirst ? tFirst - t0 : undefined;
    if (st) {
      bot.stats = { tokens: st.generatedTokens, tps: st.tokensPerSecond, ttft, finish: st.finishReason };
      const why = { eos: 'end of text', stop: 'end of turn', length: 'max tokens', context: 'context full' }[st.finishReason];
      live.tokens.textContent = `${st.generatedTokens}${why ? ` (${why})` : ''}`;
      live.tps.textContent = st.tokensPerSecond ? `${st.tokensPerSecond.toFixed(1)} tokens/s` : '–';
      const reused = st.promptTokens - st.evaluatedPromptTokens;
      live.prompt.textContent = `${st.promptTokens} tokens${reused ? `, ${reused} reused from the cache` : ''} · prefill ${fmtMs(st.prefillMs)}`;
    } else if (pieces) {
      // stopped or failed: the figures of what was shown
      const tps = pieces > 1 && tLast > tFirst ? (pieces - 1) / ((tLast - tFirst) / 1000) : 0;
      bot.stats = { tokens: pieces, tps, ttft, finish: bot.status };
      live.tokens.textContent = `${pieces} (${bot.status})`;
      live.tps.textContent = tps ? `${tps.toFixed(1)} tokens/s` : '–';
    }
    if (!tFirst) live.ttft.textContent = '–';
    if (frame) cancelAnimationFrame(frame), (frame = 0);
    renderMessage(bot);
    scrollToEnd();
    state.gen = null;
    save();
    if (state.model && !state.loading) setState('ready');
    finish();
  }
}

async function stopGeneration() {
  const g = state.gen;
  if (!g) return;
  g.ac.abort();
  await g.done;
}

async function newChat() {
  await stopGeneration();
  state.messages = [];
  save();
  renderAll();
  for (const id of ['l-ttft', 'l-tps', 'l-tokens', 'l-prompt']) $(id).textContent = '–';
  $('prompt').focus();
}

// ---- settings -----------------------------------------------------------------

function showSettings() {
  const s = state.settings;
  $('s-temperature').value = String(s.temperature);
  $('o-temperature').textContent = s.temperature === 0 ? '0 (greedy)' : s.temperature.toFixed(2);
  $('s-topp').value = String(s.topP);
  $('o-topp').textContent = s.topP >= 1 ? '1 (off)' : s.topP.toFixed(2);
  $('s-maxtokens').value = String(s.maxTokens);
  if (document.activeElement !== $('s-system')) $('s-system').value = s.system;
}

function readSettings() {
  state.settings = sanitizeSettings({
    temperature: $('s-temperature').value,
    topP: $('s-topp').value,
    maxTokens: $('s-maxtokens').value || DEFAULT_SETTINGS.maxTokens,
    system: $('s-system').value,
  });
  showSettings();
  save();
}

// ---- side panel (a sheet on narrow screens) -----------------------------------

const narrow = matchMedia('(max-width: 899px)');

function setPanel(open) {
  document.body.classList.toggle('panel-open', open);
  $('btn-panel').setAttribute('aria-expanded', String(open));
  $('scrim').hidden = !open || !narrow.matches;
  if (open) $('btn-panel-close').focus();
  else if (narrow.matches) $('btn-panel').focus();
}

// ---- wiring -----------------------------------------------------------------------

function autoGrow() {
  const t = $('prompt');
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight + 2, innerHeight * 0.4)}px`;
}

function wire() {
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    send($('prompt').value);
  });
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (!state.gen) send($('prompt').value);
    }
  });
  $('prompt').addEventListener('input', autoGrow);
  $('btn-stop').addEventListener('click', () => {
    stopGeneration();
    $('prompt').focus();
  });
  $('btn-new').addEventListener('click', newChat);
  for (const chip of document.querySelectorAll('.chip')) chip.addEventListener('click', () => send(chip.textContent));
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (state.gen) {
      e.preventDefault();
      stopGeneration();
    } else if (document.body.classList.contains('panel-open')) setPanel(false);
  });
  $('btn-panel').addEventListener('click', () => setPanel(!document.body.classList.contains('panel-open')));
  $('btn-panel-close').addEventListener('click', () => setPanel(false));
  $('scrim').addEventListener('click', () => setPanel(false));
  narrow.addEventListener('change', () => setPanel(false));
  $('load-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const url = $('pack-url').value.trim() || defaultPackUrl();
    setPanel(false);
    loadPack(url, $('variant-select').value);
  });
  $('btn-default-pack').addEventListener('click', () => loadPack(defaultPackUrl(), 'auto'));
  $('settings').addEventListener('input', readSettings);
  $('settings').addEventListener('submit', (e) => e.preventDefault());
  $('btn-reset').addEventListener('click', () => {
    state.settings = { ...DEFAULT_SETTINGS };
    $('s-system').value = '';
    showSettings();
    save();
  });
  $('banner-action').addEventListener('click', applyUpdate);
  $('banner-close').addEventListener('click', () => ($('banner').hidden = true));
  addEventListener('online', () => {
    updateOnline();
    checkForUpdates();
  });
  addEventListener('offline', updateOnline);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && navigator.onLine) checkForUpdates();
  });
}

async function loadConfig() {
  try {
    const res = await fetch('config.json');
    if (res.ok) {
      const c = await res.json();
      if (Array.isArray(c?.packs)) state.config = c;
    }
  } catch {
    // no config: the default pack path
  }
  const list = $('pack-list');
  list.replaceChildren(
    ...state.config.packs.map((p) => {
      const o = document.createElement('option');
      o.value = p.url;
      o.label = p.name;
      return o;
    }),
  );
}

async function main() {
  restore();
  wire();
  showSettings();
  renderAll();
  updateOnline();
  setState('starting');
  showDevice();
  const reg = await registerServiceWorker();
  if (await reloadForIsolation(reg)) return;
  await loadConfig();
  await loadPack(params.get('pack') || defaultPackUrl(), params.get('variant') || 'auto');
}

main();
