// Prints bench-results/page-vs-wllama.json (written by page-vs-wllama.spec.mjs) as Markdown for
// README's performance section (scripts/perf.sh).   node bench/report.mjs [FILE]
import { readFileSync } from 'node:fs';

const file = process.argv[2] || new URL('../bench-results/page-vs-wllama.json', import.meta.url);
const r = JSON.parse(readFileSync(file, 'utf8'));
const a = r.adapter;
console.log(`In the page, headless Chromium: adapter **${a.name}** (${a.backend}), matvec \`${a.matvec_kernel}\`, prefill matmul \`${a.matmul_kernel}\`; ` +
  `beside wllama 3.8.1 (llama.cpp compiled to wasm, on the CPU) in the same browser. Model: ${r.model}; ` +
  `the same ${r.prompt_tokens}-token prompt, ${r.decode_tokens} tokens decoded greedily (\`scripts/bench-page.sh\`, ${r.date ?? 'undated'}).`);
console.log();
console.log('| runtime | prefill tok/s | decode tok/s |');
console.log('|---|---|---|');
for (const row of r.rows) console.log(`| ${row.runtime} | ${row.prefill.toFixed(2)} | ${row.decode.toFixed(2)} |`);
console.log();
console.log(r.int4_over_wllama.map((q) => `lowbit INT4 ÷ wllama ${q.threads} thread${q.threads > 1 ? 's' : ''}: decode **${q.decode.toFixed(2)}×**, prefill ${q.prefill.toFixed(2)}×`).join('; ') + '.');
