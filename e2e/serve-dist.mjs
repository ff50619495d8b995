// Serves the release build in ../dist for the e2e suite, as `trunk serve` would: the headers of
// Trunk.toml's [serve.headers] (CSP, COOP/COEP) on every answer, and the page itself for any path
// that is not a file (a mistyped model link gets a web page, as from Trunk's dev server).
// scripts/test.sh builds dist/ once (and only when its inputs changed); every spec reuses it.
// Model files come from ../www/models, where scripts/test.sh writes them (the build's copy in
// dist/models may predate the test model), and from dist/models otherwise.
import { createServer } from 'node:http';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const dist = join(root, 'dist');
const www = join(root, 'www');
const port = Number(process.argv[2] || 8090);

/** The `Name = "value"` lines of Trunk.toml's [serve.headers] table. */
function trunkHeaders() {
  const toml = readFileSync(join(root, 'Trunk.toml'), 'utf8');
  const table = toml.split(/^\[serve\.headers\]\s*$/m)[1]?.split(/^\[/m)[0] ?? '';
  const headers = {};
  for (const m of table.matchAll(/^([A-Za-z-]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/gm)) headers[m[1]] = m[2];
  if (!headers['Content-Security-Policy']) throw new Error('Trunk.toml has no [serve.headers] Content-Security-Policy');
  return headers;
}

const headers = trunkHeaders();
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

function fileIn(dir, urlPath) {
  let path;
  try {
    path = normalize(join(dir, decodeURIComponent(urlPath)));
  } catch {
    return null;
  }
  if (!path.startsWith(dir + '/')) return null;
  try {
    const st = statSync(path);
    if (st.isDirectory()) return fileIn(dir, join(urlPath, 'index.html'));
    return { path, size: st.size };
  } catch {
    return null;
  }
}

/// The wllama peer page of the page benchmark (scripts/bench-page.sh) and wllama's own files.
const peer = join(root, 'e2e', 'bench', 'peer');
const wllama = join(root, 'e2e', 'node_modules', '@wllama', 'wllama', 'esm');

function fileFor(urlPath) {
  if (urlPath.startsWith('/peer/wllama/')) return fileIn(wllama, urlPath.slice('/peer/wllama'.length));
  if (urlPath.startsWith('/peer/')) return fileIn(peer, urlPath.slice('/peer'.length));
  return (urlPath.startsWith('/models/') && fileIn(www, urlPath)) || fileIn(dist, urlPath);
}

createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const file = fileFor(url.pathname) ?? fileFor('/index.html');
  if (!file) {
    res.writeHead(500, headers).end('dist/index.html is missing: run scripts/test.sh (it builds the app)');
    return;
  }
  res.writeHead(200, {
    ...headers,
    'Content-Type': types[extname(file.path)] ?? 'application/octet-stream',
    'Content-Length': file.size,
    'Cache-Control': 'no-cache',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file.path).pipe(res);
}).listen(port, '127.0.0.1', () => console.log(`serving ${dist} at http://127.0.0.1:${port}/`));
