#!/usr/bin/env node
// Draws the demo's PNG icons (a three-petalled trillium on a green tile) with
// no dependencies: pixels from signed distances, 4x4 supersampled, written
// through node:zlib. demo/build.mjs runs it into the site it assembles:
//   node demo/make-icons.mjs [OUT_DIR]        (default: demo/icons, git-ignored)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const OUT = process.argv[2] || join(dirname(fileURLToPath(import.meta.url)), 'icons');

const BG = [0x17, 0x5c, 0x4c];
const PETAL = [0xf7, 0xf4, 0xea];
const CENTRE = [0xe8, 0xb5, 0x3a];

// Coverage of each layer at a point in [-1, 1]^2; `maskable` shrinks the motif
// into the 80 % safe zone and fills the whole square (launchers crop it).
function layers(x, y, maskable) {
  const s = maskable ? 0.72 : 1;
  const px = x / s;
  const py = y / s;
  let tile = 1;
  if (!maskable) {
    // rounded square, corner radius 0.36
    const r = 0.36;
    const qx = Math.abs(x) - (0.96 - r);
    const qy = Math.abs(y) - (0.96 - r);
    const d = Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
    tile = d <= 0 ? 1 : 0;
  }
  // three ellipse petals at 90, 210 and 330 degrees
  let petal = 0;
  for (let k = 0; k < 3; k++) {
    const a = (-Math.PI / 2) + (k * 2 * Math.PI) / 3;
    const cx = Math.cos(a) * 0.36;
    const cy = Math.sin(a) * 0.36 + 0.1;
    const dx = px - cx;
    const dy = py - cy;
    const u = dx * Math.cos(a) + dy * Math.sin(a);
    const v = -dx * Math.sin(a) + dy * Math.cos(a);
    if ((u / 0.4) ** 2 + (v / 0.24) ** 2 <= 1) petal = 1;
  }
  const centre = Math.hypot(px, py - 0.1) <= 0.13 ? 1 : 0;
  return { tile, petal, centre };
}

function render(size, maskable) {
  const n = 4; // supersampling per axis
  const rgba = Buffer.alloc(size * size * 4);
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let sj = 0; sj < n; sj++) {
        for (let si = 0; si < n; si++) {
          const x = ((i + (si + 0.5) / n) / size) * 2 - 1;
          const y = ((j + (sj + 0.5) / n) / size) * 2 - 1;
          const l = layers(x, y, maskable);
          if (!l.tile) continue;
          const c = l.centre ? CENTRE : l.petal ? PETAL : BG;
          r += c[0];
          g += c[1];
          b += c[2];
          a += 255;
        }
      }
      const o = (j * size + i) * 4;
      const m = n * n;
      // straight (not premultiplied) alpha: average colour over covered samples only
      const cov = a / 255;
      rgba[o] = cov ? Math.round(r / cov) : 0;
      rgba[o + 1] = cov ? Math.round(g / cov) : 0;
      rgba[o + 2] = cov ? Math.round(b / cov) : 0;
      rgba[o + 3] = Math.round(a / m);
    }
  }
  return png(size, size, rgba);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function png(w, h, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  // each scanline starts with filter byte 0 (none)
  const raw = Buffer.alloc((w * 4 + 1) * h);
  for (let y = 0; y < h; y++) rgba.copy(raw, y * (w * 4 + 1) + 1, y * w * 4, (y + 1) * w * 4);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

mkdirSync(OUT, { recursive: true });
const icons = [
  ['icon-32.png', 32, false],
  ['icon-180.png', 180, true], // apple-touch-icon: iOS rounds the corners itself
  ['icon-192.png', 192, false],
  ['icon-512.png', 512, false],
  ['icon-maskable-512.png', 512, true],
];
for (const [name, size, maskable] of icons) {
  const file = join(OUT, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, render(size, maskable));
  console.log(`wrote ${file}`);
}
