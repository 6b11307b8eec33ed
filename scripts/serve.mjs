#!/usr/bin/env node
// scripts/serve.mjs — a dependency-free static server for the v386 page.
//
//   node scripts/serve.mjs [--port 8000] [--host 127.0.0.1]
//
//   /          → www/            (index.html, app.js, worker.js, node_modules/@xterm/...)
//   /pkg/      → pkg/            (the wasm package built by scripts/build-web.sh)
//   /images/   → .cache/images/  (SeaBIOS, the demo floppy and the other guest images)
//
// GET and HEAD only; anything outside those roots, or missing, is a 404. --port 0 picks a
// free port; the line "serving http://HOST:PORT/" tells which (the e2e test reads it).
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOTS = [
    ['/pkg/', join(repo, 'pkg')],
    ['/images/', join(repo, '.cache', 'images')],
    ['/', join(repo, 'www')],
];
const TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.mjs': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
    '.json': 'application/json',
    '.map': 'application/json',
    '.wasm': 'application/wasm',
    '.md': 'text/plain; charset=utf-8',
    '.txt': 'text/plain; charset=utf-8',
    '.ts': 'text/plain; charset=utf-8',
    '.png': 'image/png',
    '.svg': 'image/svg+xml',
    '.ico': 'image/x-icon',
};

function option(name, fallback) {
    const i = process.argv.indexOf(name);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** The file a URL path names, or null when it is outside every root. */
function resolvePath(urlPath) {
    let path;
    try {
        path = decodeURIComponent(urlPath);
    } catch {
        return null;
    }
    if (path.includes('\0')) return null;
    for (const [prefix, root] of ROOTS) {
        if (!path.startsWith(prefix)) continue;
        const file = resolve(root, '.' + path.slice(prefix.length - 1));
        return file === root || file.startsWith(root + sep) ? file : null;
    }
    return null;
}

async function handle(req, res) {
    const url = new URL(req.url, 'http://localhost');
    let file = resolvePath(url.pathname);
    let info = file && (await stat(file).catch(() => null));
    if (info?.isDirectory()) {
        file = join(file, 'index.html');
        info = await stat(file).catch(() => null);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (!info?.isFile()) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`404 not found: ${url.pathname}\n`);
    } else {
        res.writeHead(200, {
            'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
            'Content-Length': info.size,
            'Cache-Control': 'no-cache',
        });
        if (req.method === 'HEAD') res.end();
        else createReadStream(file).pipe(res);
    }
    if (process.env.SERVE_LOG) console.log(res.statusCode, req.method, url.pathname);
}

const host = option('--host', '127.0.0.1');
const server = createServer((req, res) =>
    handle(req, res).catch((e) => {
        console.error(e);
        if (!res.headersSent) res.writeHead(500);
        res.end();
    }),
);
server.listen(Number(option('--port', 8000)), host, () => {
    const { port } = server.address();
    console.log(`serving http://${host.includes(':') ? `[${host}]` : host}:${port}/`);
});
