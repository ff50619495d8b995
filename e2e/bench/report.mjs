// Prints bench-results/page-vs-wllama.json (written by page-vs-wllama.spec.mjs) as Markdown for
// README's performance section (scripts/perf.sh).   node bench/report.mjs [FILE]
import { readFileSync } from 'node:fs';

const file = process.argv[2] || new URL('../bench-results/page-vs-wllama.json', import.meta.url);
const r = JSON.parse(readFileSync(file, 'utf8'));
const a = r.adapter;
// A figure with its range over the runs (older reports hold one number: one run).
const fig = (s, d) => (typeof s === 'number' ? s.toFixed(d) : s.runs > 1 ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : s.median.toFixed(d));
const runs = r.runs ?? 1;
console.log(`In the page, headless Chromium: adapter **${a.name}** (${a.backend}), matvec \`${a.matvec_kernel}\`, prefill matmul \`${a.matmul_kernel}\`; ` +
  `beside wllama 3.8.1 (llama.cpp compiled to wasm, on the CPU) in the same browser. Model: ${r.model}; ` +
  `the same ${r.prompt_tokens}-token prompt, ${r.decode_tokens} tokens decoded greedily; ` +
  `${runs > 1 ? `median (and range) of ${runs} runs each, lowbit's precisions taking turns and wllama's thread counts taking turns` : 'one run'} (\`scripts/bench-page.sh\`, ${r.date ?? 'undated'}).`);
console.log();
console.log('| runtime | prefill tok/s | decode tok/s |');
console.log('|---|---|---|');
for (const row of r.rows) console.log(`| ${row.runtime} | ${fig(row.prefill, 2)} | ${fig(row.decode, 2)} |`);
console.log();
// A ratio: the medians' quotient, its range from the lowest over the highest to the highest over
// the lowest (the runtimes run one after the other, so their runs are not paired).
const quot = (a, b) => (typeof a === 'number' ? a / b : { median: a.median / b.median, min: a.min / b.max, max: a.max / b.min, runs: Math.min(a.runs, b.runs) });
const int4 = r.rows.find((row) => row.runtime === 'lowbit INT4');
const peers = r.rows.filter((row) => row.runtime.startsWith('wllama'));
console.log(peers.map((w) => `lowbit INT4 ÷ ${w.runtime}: decode **${fig(quot(int4.decode, w.decode), 2)}×**, prefill ${fig(quot(int4.prefill, w.prefill), 2)}×`).join('; ') + '.' +
  (runs > 1 ? ' A ratio is the medians\' quotient; its range runs from the lowest over the highest to the highest over the lowest.' : ''));
