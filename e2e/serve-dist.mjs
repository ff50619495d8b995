// Serves the release build in ../dist for the e2e suite, as a static host would: the headers of
// www/_headers (CSP, COOP/COEP; checked equal to Trunk.toml's [serve.headers]) on every answer,
// and 404 for a path that is not a file (a mistyped model link is not found, as from Trunk's dev
// server with `no_spa`).
// scripts/test.sh builds dist/ once (and only when its inputs changed); every spec reuses it.
// Model files come from ../www/models, where scripts/test.sh writes them (the build's copy in
// dist/models may predate the test model), and from dist/models otherwise.
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shippedHeaders, trunkHeaders } from './headers.mjs';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const dist = join(root, 'dist');
const www = join(root, 'www');
const port = Number(process.argv[2] || 8090);

// The page is served with the headers a static deployment ships, which must be the dev server's.
const headers = shippedHeaders();
if (JSON.stringify(headers) !== JSON.stringify(trunkHeaders())) {
  throw new Error(`www/_headers and Trunk.toml [serve.headers] differ:\n${JSON.stringify(headers, null, 1)}\n${JSON.stringify(trunkHeaders(), null, 1)}`);
}
if (!headers['Content-Security-Policy']) throw new Error('www/_headers has no Content-Security-Policy');
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

/// Larger models the test suite fetches (scripts/test.sh, into .tools/models): served to the e2e
/// suite only, never built into dist/.
const testModels = join(root, '.tools', 'models');

function fileFor(urlPath) {
  if (urlPath.startsWith('/test-models/')) return fileIn(testModels, urlPath.slice('/test-models'.length));
  if (urlPath.startsWith('/peer/wllama/')) return fileIn(wllama, urlPath.slice('/peer/wllama'.length));
  if (urlPath.startsWith('/peer/')) return fileIn(peer, urlPath.slice('/peer'.length));
  return (urlPath.startsWith('/models/') && fileIn(www, urlPath)) || fileIn(dist, urlPath);
}

createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const file = fileFor(url.pathname);
  if (!file) {
    if (!fileFor('/index.html')) {
      res.writeHead(500, headers).end('dist/index.html is missing: run scripts/test.sh (it builds the app)');
    } else {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end(`${url.pathname}: not found`);
    }
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
