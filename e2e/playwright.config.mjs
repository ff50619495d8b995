// lowbit e2e: Debian's Chromium, headless, WebGPU on SwiftShader. The app is served by
// `trunk serve --release` (same build and headers as README's serve command) on port 8090.
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
  timeout: 10 * 60 * 1000,
  expect: { timeout: 30 * 1000 },
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: 'http://127.0.0.1:8090',
    headless: true,
    launchOptions: { executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs },
  },
  webServer: {
    command: 'trunk serve --release --port 8090',
    cwd: '..',
    url: 'http://127.0.0.1:8090/',
    reuseExistingServer: false,
    timeout: 15 * 60 * 1000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
