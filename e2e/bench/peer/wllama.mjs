// The wllama peer: `window.wllamaBench(...)` loads a GGUF into wllama (llama.cpp on the CPU, in
// wasm) with `threads` threads, prefills `prompt` (lowbit's benchmark prompt as text) and
// decodes `tokens` tokens greedily (end of text ignored), and returns llama.cpp's own timings.
import { Wllama } from '/peer/wllama/index.js';

const quiet = { debug() {}, log() {}, warn: console.warn, error: console.error };

window.wllamaBench = async ({ model, threads, prompt, tokens }) => {
  const bytes = await (await fetch(model)).arrayBuffer();
  const w = new Wllama({ default: '/peer/wllama/wasm/wllama.wasm' }, { logger: quiet, suppressNativeLog: true });
  const t0 = performance.now();
  await w.loadModel([new File([bytes], 'model.gguf')], { n_threads: threads, n_gpu_layers: 0, n_ctx: 1024, seed: 1 });
  const load_ms = performance.now() - t0;
  const r = await w.createCompletion({
    prompt, max_tokens: tokens, temperature: 0, ignore_eos: true, cache_prompt: false,
  });
  const out = { threads: w.isMultithread() ? threads : 1, load_ms, timings: r.timings, text: r.choices[0].text };
  await w.exit();
  return out;
};
document.getElementById('status').textContent = 'ready';
