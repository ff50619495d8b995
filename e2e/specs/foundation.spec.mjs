// The page comes up with the default model listed, finds WebGPU, passes the kernel self-test
// and runs the kernel benchmark.
import { test, expect } from '@playwright/test';
import { AppPage } from '../pages/app.mjs';

test('page lists the default model and the WebGPU adapter', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await app.open();
  await expect(app.id('model-file')).toHaveText('SmolLM2-135M-Instruct.Q4_1.gguf');
  await expect(app.id('model-size')).toContainText('98362432 bytes');
  await app.openDiagnostics();
  await expect(app.id('adapter-name')).toContainText('WebGpu');
  await app.screenshot(testInfo, 'page');
  expect(app.errors).toEqual([]);
});

test('every kernel passes the self-test on WebGPU', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await app.open();
  const rows = await app.runSelfTest();
  await app.screenshot(testInfo, 'selftest');
  const status = await app.id('kernel-selftest-status').textContent();
  const n = await rows.count();
  // 3 precisions x (matvec variants x 4 fusions, 2 matmul tilings, embedding) + the f32 ops
  // + RoPE/KV-store and attention per KV format.
  expect(n).toBeGreaterThanOrEqual(40);
  const failed = await rows.evaluateAll((rs) => rs.filter((r) => r.dataset.pass !== 'true').map((r) => r.textContent));
  console.log(`self-test rows that failed: ${JSON.stringify(failed)}`);
  expect(status).toBe(`${n}/${n} passed`);
  for (let i = 0; i < n; i++) {
    await expect(rows.nth(i)).toHaveAttribute('data-pass', 'true');
  }
  const kernels = await rows.evaluateAll((rs) => rs.map((r) => `${r.dataset.kernel}:${r.dataset.precision}`));
  // Chromium's adapters offer subgroups (SwiftShader: size 4); the device asks for them although
  // wgpu's WebGPU backend cannot (gpu::browser), so the subgroup matvec runs in the page too.
  await expect(app.id('adapter-subgroups')).toContainText('available (size');
  for (const p of ['fp16', 'int8', 'int4']) {
    for (const f of ['', '_norm', '_add', '_norm_silu']) expect(kernels).toContain(`matvec_${p}${f}:${p}`);
  }
  for (const p of ['fp16', 'int8', 'int4']) {
    for (const k of ['matvec', 'matmul', 'embedding']) {
      expect(kernels.some((s) => s.startsWith(`${k}_${p}`))).toBeTruthy();
    }
    // The barrier-free decode matvec with each fusion (what a software adapter runs).
    for (const f of ['', '_norm', '_add', '_norm_silu']) {
      expect(kernels).toContain(`matvec_${p}_rows${f}:${p}`);
    }
  }
  for (const k of ['rmsnorm', 'silu_mul', 'add', 'argmax', 'sample', 'attention', 'attention_kv_int8', 'rope_store_kv_f32', 'rope_neox_store_kv_int8']) {
    expect(kernels).toContain(`${k}:f32`);
  }
  expect(app.errors).toEqual([]);
});

test('kernel benchmark reports every precision and shape', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await app.open();
  const rows = await app.runBench();
  await app.screenshot(testInfo, 'bench');
  await expect(app.id('kernel-bench-status')).toHaveText(/^timer: (timestamp|wall)/);
  await expect(rows).toHaveCount(15);
  const gbps = await rows.evaluateAll((rs) => rs.map((r) => parseFloat(r.children[4].textContent)));
  for (const g of gbps) expect(g).toBeGreaterThan(0);
  await expect(app.id('kernel-bench-copy')).toContainText('GB/s');
  expect(app.errors).toEqual([]);
});
