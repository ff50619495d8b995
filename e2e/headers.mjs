// The page's HTTP headers: what a static host ships (www/_headers) and what Trunk's dev server
// sends (Trunk.toml's [serve.headers]). Used by the e2e server and the privacy spec.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** The `Name = "value"` lines of Trunk.toml's [serve.headers] table (the dev server's headers). */
export function trunkHeaders() {
  const toml = readFileSync(join(root, 'Trunk.toml'), 'utf8');
  const table = toml.split(/^\[serve\.headers\]\s*$/m)[1]?.split(/^\[/m)[0] ?? '';
  const headers = {};
  for (const m of table.matchAll(/^([A-Za-z-]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/gm)) headers[m[1]] = m[2];
  return headers;
}

/** The `/*` block of www/_headers (what a static host serves). */
export function shippedHeaders() {
  const text = readFileSync(join(root, 'www', '_headers'), 'utf8');
  const headers = {};
  let inBlock = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue;
    if (!line.startsWith(' ')) { inBlock = line.trim() === '/*'; continue; }
    const m = inBlock && line.match(/^\s+([A-Za-z-]+):\s*(.*)$/);
    if (m) headers[m[1]] = m[2];
  }
  return headers;
}

