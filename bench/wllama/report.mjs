#!/usr/bin/env node
// The JSON of bench.mjs -> a markdown table (stdout, or --md FILE) and an SVG
// chart of tokens/s per engine, model, type and threads (--svg FILE).
//
//   node bench/wllama/report.mjs docs/bench/wllama.json [--md FILE] [--svg docs/bench/wllama.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: { md: { type: 'string' }, svg: { type: 'string' } },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: report.mjs RESULT.json [--md FILE] [--svg FILE]\n');
  process.exit(2);
}
const j = JSON.parse(readFileSync(positionals[0], 'utf8'));
const TYPE = { tq2_0: 'TQ2_0', tq1_0: 'TQ1_0', q4_0: 'Q4_0', q8_0: 'Q8_0', f16: 'F16', bcq2: 'bcq 2-bit', lowrank: 'low-rank 0.5' };
const TRL = { tq2_0: 't2, int8 act.', tq1_0: 't1, int8 act.', q4_0: 'q8_0', q8_0: 'q8_0', f16: 'f16', bcq2: 'bcq2', lowrank: 'rank 0.5, q8_0' };
const mb = (b) => (b == null ? '-' : (b / 1e6).toFixed(1));
const f = (v, d = 1) => (v == null ? '-' : v.toFixed(d));
const x = (v) => (v == null ? '-' : `${v.toFixed(2)}x`);
const cell = (t, w, k, d = 1) => (w ? `${f(t?.[k], d)} / ${f(w?.[k], d)}` : f(t?.[k], d));

// ------------------------------------------------------------------ table
const lines = [];
lines.push('| model | type (Trillium pack) | thr | download MB T / W | load s T / W | prefill 64 tok/s T / W | ratio | prefill 512 tok/s T / W | ratio | decode tok/s T / W | ratio | peak MB T / W | load avg |');
lines.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const r of j.rows) {
  const t = r.trillium;
  const w = r.wllama;
  const sec = (o) => (o?.load_ms == null ? null : o.load_ms / 1000);
  lines.push(`| ${r.size} | ${TYPE[r.type] ?? r.type}${r.trillium_only ? ' (Trillium only)' : ''} (${TRL[r.type] ?? ''}) | ${r.threads} `
    + `| ${mb(t?.model_bytes)}${w ? ` / ${mb(w.model_bytes)}` : ''} `
    + `| ${f(sec(t), 2)}${w ? ` / ${f(sec(w), 2)}` : ''} `
    + `| ${cell(t, w, 'prefill64')} | ${x(r.ratio?.prefill64)} `
    + `| ${cell(t, w, 'prefill512')} | ${x(r.ratio?.prefill512)} `
    + `| ${cell(t, w, 'decode')} | ${x(r.ratio?.decode)} `
    + `| ${cell(t, w, 'peak_pss_mb', 0)} | ${f(t?.loadavg ?? w?.loadavg)} |`);
}
if (j.cross?.length) {
  lines.push('');
  lines.push('| model | thr | Trillium TQ2_0 (t2) decode tok/s | wllama Q4_0 decode tok/s | ratio | download MB T / W Q4_0 |');
  lines.push('|---|--:|--:|--:|--:|--:|');
  for (const c of j.cross) {
    lines.push(`| ${c.size} | ${c.threads} | ${f(c.trillium_tq2_0_decode)} | ${f(c.wllama_q4_0_decode)} | ${x(c.ratio)} | ${mb(c.trillium_bytes)} / ${mb(c.wllama_q4_0_bytes)} |`);
  }
}
const md = lines.join('\n') + '\n';
if (a.md) writeFileSync(a.md, md);
else process.stdout.write(md);

// ------------------------------------------------------------------ chart
if (a.svg) {
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = j.rows.filter((r) => r.trillium || r.wllama);
  const panels = [['decode', 'decode tok/s (128 tokens)'], ['prefill512', 'prefill tok/s (512-token prompt)']];
  const labelW = 190;
  const panelW = 330;
  const barH = 8;
  const rowH = 2 * barH + 6;
  const top = 58;
  const H = top + rows.length * rowH + 40;
  const W = labelW + panels.length * (panelW + 40) + 10;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="10" y="18" font-size="14" font-weight="bold">Trillium vs wllama ${esc(j.wllama.version)} (llama.cpp ${esc(j.wllama.libllama ?? '')}), headless Chromium ${esc(j.chromium ?? '')}</text>`);
  out.push(`<text x="10" y="34">${esc(j.date.slice(0, 10))}, ${esc(j.machine.cpu ?? '')}, ${j.machine.cpus} cores shared (load avg in the table); same GGUF weights, medians</text>`);
  out.push(`<rect x="10" y="42" width="10" height="8" fill="#2b7a3d"/><text x="24" y="50">Trillium</text><rect x="80" y="42" width="10" height="8" fill="#9a9a9a"/><text x="94" y="50">wllama</text>`);
  panels.forEach(([k, title], p) => {
    const x0 = labelW + p * (panelW + 40);
    const max = Math.max(1, ...rows.flatMap((r) => [r.trillium?.[k] ?? 0, r.wllama?.[k] ?? 0]));
    out.push(`<text x="${x0}" y="${top - 4}" font-weight="bold">${esc(title)}</text>`);
    out.push(`<line x1="${x0}" y1="${top}" x2="${x0}" y2="${top + rows.length * rowH}" stroke="#444"/>`);
    rows.forEach((r, i) => {
      const y = top + i * rowH + 2;
      [['trillium', '#2b7a3d'], ['wllama', '#9a9a9a']].forEach(([e, color], q) => {
        const v = r[e]?.[k];
        if (v == null) return;
        const w = Math.max(1, (v / max) * panelW);
        out.push(`<rect x="${x0}" y="${y + q * barH}" width="${w.toFixed(1)}" height="${barH - 1}" fill="${color}"/>`);
        out.push(`<text x="${(x0 + w + 3).toFixed(1)}" y="${y + q * barH + barH - 1}" font-size="9">${v.toFixed(1)}</text>`);
      });
    });
  });
  rows.forEach((r, i) => {
    const y = top + i * rowH + rowH / 2 + 3;
    out.push(`<text x="${labelW - 6}" y="${y}" text-anchor="end">${esc(`${r.size} ${TYPE[r.type] ?? r.type}${r.trillium_only ? '*' : ''}, ${r.threads} thr`)}</text>`);
  });
  out.push(`<text x="10" y="${H - 12}" font-size="10">* Trillium-only format (no wllama equivalent). Data: docs/bench/wllama.json; method: docs/BENCHMARKS.md.</text>`);
  out.push('</svg>');
  writeFileSync(a.svg, out.join('\n') + '\n');
}
