// lowbit e2e: Debian's Chromium, headless, WebGPU on SwiftShader. scripts/test.sh builds the
// release app into dist/ once (skipped when current); serve-dist.mjs serves it on port 8090 with
// Trunk.toml's headers, as README's serve command does.
//
// No test depends on the machine's speed: specs wait for states (a row appears, a status says
// ready). The timeouts below are safety nets against a hang, sized for a machine several times
// slower than a 2-core CI runner with a software GPU.
//
// Two workers: one spec file's page leaves the processor idle a fifth to a third of the time
// (downloads, page loads, the page's own waits), and two files side by side fill it. Measured on
// this 2-core machine: the 40 tests in 12.1 min against 15.0 with one worker; each test takes up
// to twice as long, so the default expect timeout is 120 s.
import { defineConfig } from '@playwright/test';

const chromiumArgs = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export default defineConfig({
  testDir: './specs',
  outputDir: './test-results',
  timeout: 30 * 60 * 1000,
  expect: { timeout: 120 * 1000 },
  workers: 2,
  reporter: [['list']],
  use: {
    baseURL: 'http://127.0.0.1:8090',
    headless: true,
    // A click or fill that cannot happen (a disabled or missing control) fails instead of hanging.
    actionTimeout: 120 * 1000,
    launchOptions: { executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs },
  },
  webServer: {
    command: 'node serve-dist.mjs 8090',
    url: 'http://127.0.0.1:8090/',
    reuseExistingServer: false,
    timeout: 60 * 1000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
