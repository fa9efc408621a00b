// QR code (ISO/IEC 18004) of a short text, for the "add a phone" view: byte mode, error
// correction level M, versions 1 to 10 (up to 213 bytes, plenty for a server URL), the
// mask with the lowest penalty. After Project Nayuki's QR Code generator (MIT), cut down
// to what a URL needs. qrModules(text) gives the rows of modules (true: dark), or null
// when the text does not fit; qrSvg(text) an <svg> of them with a quiet zone.
"use strict";

// Error correction codewords per block and blocks, level M, versions 1 to 10.
const QR_EC_PER_BLOCK = [10, 16, 26, 18, 24, 16, 18, 22, 22, 26];
const QR_BLOCKS = [1, 1, 1, 2, 2, 4, 4, 4, 5, 5];

function qrRawCodewords(ver) {
  let modules = (16 * ver + 128) * ver + 64;
  if (ver >= 2) {
    const align = Math.floor(ver / 7) + 2;
    modules -= (25 * align - 10) * align - 55;
    if (ver >= 7) modules -= 36;
  }
  return Math.floor(modules / 8);
}

function qrDataCodewords(ver) {
  return qrRawCodewords(ver) - QR_EC_PER_BLOCK[ver - 1] * QR_BLOCKS[ver - 1];
}

function qrMultiply(x, y) {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z;
}

// The remainder of data divided by the generator polynomial of the given degree.
function qrReedSolomon(data, degree) {
  const divisor = new Array(degree).fill(0);
  divisor[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < degree; j++) {
      divisor[j] = qrMultiply(divisor[j], root);
      if (j + 1 < degree) divisor[j] ^= divisor[j + 1];
    }
    root = qrMultiply(root, 0x02);
  }
  const result = new Array(degree).fill(0);
  for (const b of data) {
    const factor = b ^ result.shift();
    result.push(0);
    divisor.forEach((coef, i) => { result[i] ^= qrMultiply(coef, factor); });
  }
  return result;
}

// The data codewords of the text in byte mode, padded to the version's capacity.
function qrData(bytes, ver) {
  const bits = [];
  const push = (value, len) => { for (let i = len - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
  push(4, 4);
  push(bytes.length, ver < 10 ? 8 : 16);
  bytes.forEach((b) => push(b, 8));
  const capacity = qrDataCodewords(ver) * 8;
  push(0, Math.min(4, capacity - bits.length));
  push(0, (8 - (bits.length % 8)) % 8);
  for (let pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) push(pad, 8);
  const out = [];
  for (let i = 0; i < bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8).join(""), 2));
  return out;
}

// The codewords of every block, data then error correction, interleaved.
function qrCodewords(data, ver) {
  const blocks = QR_BLOCKS[ver - 1];
  const ec = QR_EC_PER_BLOCK[ver - 1];
  const raw = qrRawCodewords(ver);
  const short = blocks - (raw % blocks);
  const shortLen = Math.floor(raw / blocks);
  const all = [];
  for (let i = 0, k = 0; i < blocks; i++) {
    const dat = data.slice(k, k + shortLen - ec + (i < short ? 0 : 1));
    k += dat.length;
    const block = dat.concat(qrReedSolomon(dat, ec));
    if (i < short) block.splice(shortLen - ec, 0, 0);
    all.push(block);
  }
  const out = [];
  for (let i = 0; i < all[0].length; i++) {
    all.forEach((block, j) => { if (i !== shortLen - ec || j >= short) out.push(block[i]); });
  }
  return out;
}

function qrAlignment(ver, size) {
  if (ver === 1) return [];
  const count = Math.floor(ver / 7) + 2;
  const step = Math.floor((ver * 8 + count * 3 + 5) / (count * 4 - 4)) * 2;
  const out = [6];
  for (let pos = size - 7; out.length < count; pos -= step) out.splice(1, 0, pos);
  return out;
}

const QR_MASKS = [
  (x, y) => (x + y) % 2 === 0,
  (x, y) => y % 2 === 0,
  (x) => x % 3 === 0,
  (x, y) => (x + y) % 3 === 0,
  (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
  (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
  (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
  (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

// The symbol of `codewords` with `mask`: [modules, isFunction].
function qrSymbol(ver, codewords, mask) {
  const size = ver * 4 + 17;
  const grid = [];
  const fixed = [];
  for (let y = 0; y < size; y++) {
    grid.push(new Array(size).fill(false));
    fixed.push(new Array(size).fill(false));
  }
  const set = (x, y, dark) => { grid[y][x] = dark; fixed[y][x] = true; };
  for (let i = 0; i < size; i++) {
    set(6, i, i % 2 === 0);
    set(i, 6, i % 2 === 0);
  }
  for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        const x = cx + dx;
        const y = cy + dy;
        if (x >= 0 && x < size && y >= 0 && y < size) set(x, y, d !== 2 && d !== 4);
      }
    }
  }
  const align = qrAlignment(ver, size);
  const last = align.length - 1;
  align.forEach((ax, i) => align.forEach((ay, j) => {
    if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) return;
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) set(ax + dx, ay + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  }));
  // Format: level M (00) and the mask, BCH(15,5), masked with 0x5412.
  let rem = mask;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  const format = ((mask << 10) | rem) ^ 0x5412;
  const bit = (value, i) => ((value >>> i) & 1) !== 0;
  for (let i = 0; i <= 5; i++) set(8, i, bit(format, i));
  set(8, 7, bit(format, 6));
  set(8, 8, bit(format, 7));
  set(7, 8, bit(format, 8));
  for (let i = 9; i < 15; i++) set(14 - i, 8, bit(format, i));
  for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(format, i));
  for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(format, i));
  set(8, size - 8, true);
  if (ver >= 7) {
    let v = ver;
    for (let i = 0; i < 12; i++) v = (v << 1) ^ ((v >>> 11) * 0x1f25);
    const bits = (ver << 12) | v;
    for (let i = 0; i < 18; i++) {
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      set(a, b, bit(bits, i));
      set(b, a, bit(bits, i));
    }
  }
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let vert = 0; vert < size; vert++) {
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const y = ((right + 1) & 2) === 0 ? size - 1 - vert : vert;
        if (!fixed[y][x]) {
          const dark = i < codewords.length * 8 && bit(codewords[i >>> 3], 7 - (i & 7));
          grid[y][x] = dark !== QR_MASKS[mask](x, y);
          i++;
        }
      }
    }
  }
  return grid;
}

// The penalty of a symbol (ISO/IEC 18004 7.8.3): runs, 2x2 blocks, finder-like patterns,
// the balance of dark and light.
function qrPenalty(grid) {
  const size = grid.length;
  const lines = [];
  for (let y = 0; y < size; y++) lines.push(grid[y].map(Number).join(""));
  for (let x = 0; x < size; x++) lines.push(grid.map((row) => Number(row[x])).join(""));
  let score = 0;
  for (const line of lines) {
    for (const run of line.match(/0{5,}|1{5,}/g) || []) score += run.length - 2;
    const padded = "0000" + line + "0000";
    for (const pattern of ["00001011101", "10111010000"]) {
      for (let at = padded.indexOf(pattern); at >= 0; at = padded.indexOf(pattern, at + 1)) score += 40;
    }
  }
  let dark = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (grid[y][x]) dark++;
      if (x + 1 < size && y + 1 < size) {
        const c = grid[y][x];
        if (grid[y][x + 1] === c && grid[y + 1][x] === c && grid[y + 1][x + 1] === c) score += 3;
      }
    }
  }
  const total = size * size;
  return score + (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1) * 10;
}

function qrModules(text) {
  const bytes = Array.from(new TextEncoder().encode(text));
  let ver = 1;
  while (ver <= 10 && 4 + (ver < 10 ? 8 : 16) + bytes.length * 8 > qrDataCodewords(ver) * 8) ver++;
  if (ver > 10) return null;
  const codewords = qrCodewords(qrData(bytes, ver), ver);
  let best = null;
  let bestScore = Infinity;
  for (let mask = 0; mask < 8; mask++) {
    const grid = qrSymbol(ver, codewords, mask);
    const score = qrPenalty(grid);
    if (score < bestScore) {
      best = grid;
      bestScore = score;
    }
  }
  return best;
}

function qrSvg(text) {
  const grid = qrModules(text);
  if (!grid) return null;
  const ns = "http://www.w3.org/2000/svg";
  const quiet = 4;
  const size = grid.length + 2 * quiet;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + size + " " + size);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  const background = document.createElementNS(ns, "rect");
  background.setAttribute("width", size);
  background.setAttribute("height", size);
  background.setAttribute("fill", "#fff");
  let d = "";
  grid.forEach((row, y) => row.forEach((dark, x) => {
    if (dark) d += "M" + (x + quiet) + " " + (y + quiet) + "h1v1h-1z";
  }));
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(background, path);
  return svg;
}
