// tests/node/lib/harness.mjs — what the browser tests share: the static server
// (scripts/serve.mjs as a child process on a free port), Debian's Chromium through
// playwright-core, and small check/wait helpers that print what they verify.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const OUT = path.join(ROOT, 'tests', 'out');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];

const t0 = Date.now();
export const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(5) + 's';
export const log = (msg) => console.log(`[${elapsed()}] ${msg}`);

let failures = 0;
/** Record one check: prints ok/FAIL and what was checked; returns `cond`. */
export function check(cond, what, detail = '') {
    if (cond) log(`ok   ${what}`);
    else {
        failures++;
        log(`FAIL ${what}${detail ? `\n${String(detail).replace(/^/gm, '       | ')}` : ''}`);
    }
    return cond;
}
export const failureCount = () => failures;

/** Poll `fn` (async) until it returns a truthy value or `ms` pass; returns the last value. */
export async function waitFor(fn, ms, interval = 100) {
    const end = Date.now() + ms;
    let value;
    for (;;) {
        value = await fn();
        if (value || Date.now() >= end) return value;
        await new Promise((r) => setTimeout(r, interval));
    }
}

/** Start scripts/serve.mjs on a free port; resolves to { url, stop() }. */
export function startServer() {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'serve.mjs'), '--port', '0'], {
            stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        const timer = setTimeout(() => reject(new Error(`serve.mjs did not start: ${out}`)), 10_000);
        child.on('exit', (code) => reject(new Error(`serve.mjs exited with ${code}: ${out}`)));
        child.stdout.on('data', (chunk) => {
            out += chunk;
            const m = /serving (http:\/\/\S+)/.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve({ url: m[1], stop: () => child.kill() });
            }
        });
    });
}

/** Launch Chromium with a fresh profile; resolves to { browser, stop() }. */
export async function startBrowser() {
    const profile = mkdtempSync(path.join(tmpdir(), 'v386-e2e-'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        headless: true,
        viewport: { width: 1440, height: 900 },
    });
    return {
        context,
        async stop() {
            await context.close().catch(() => {});
            rmSync(profile, { recursive: true, force: true });
        },
    };
}

/** Open a page, with its console errors and uncaught exceptions collected in `errors`. */
export async function openPage(context, url) {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(`console.error: ${msg.text()}`);
    });
    await page.goto(url);
    return { page, errors };
}
