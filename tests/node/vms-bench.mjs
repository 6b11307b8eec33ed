#!/usr/bin/env node
// tests/node/vms-bench.mjs — what the exits panel costs the guests: the default demo
// (www/demo.json, deterministic) on the VMs page in Debian's Chromium, with the exits panel
// open and with it left out (?panels=screen,serial), in alternating rounds.
//
//   bash scripts/build-web.sh && node tests/node/vms-bench.mjs [--rounds=3] [--from=300] [--span=1500]
//
// Guest speed is the guest instructions all VMs retired (the worker's `instructions`) per
// second of host time over one fixed stretch of the deterministic run — from `from` to
// `from + span` million instructions, the same guest work in every round — timed by the
// worker's own update messages (their `t`, the worker's clock). Prints each round and the ratio of the
// medians; the bound is a drop of at most 10 %. A benchmark, not a test: it exits 0
// whatever the figures, 1 only when the page fails.
import { log, openPage, startBrowser, startServer } from './lib/harness.mjs';

const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const ROUNDS = arg('rounds', 3);
// The same stretch of the deterministic demo in every round: from FROM guest instructions
// (past the first seconds of boot) for SPAN more (Linux booting beside the small guests).
const FROM = arg('from', 300) * 1e6;
const SPAN = arg('span', 1500) * 1e6;

async function measure(context, base, panels) {
    const { page, errors } = await openPage(context, `${base}?deterministic=1&panels=${panels}`);
    await page.waitForFunction(() => window.v386vms?.panels?.length > 0, null, { timeout: 60_000 });
    const figures = await page.evaluate(
        ([from, to]) =>
            new Promise((resolve) => {
                const view = window.v386vms;
                const before = view.onupdate;
                let first = null;
                view.onupdate = (msg) => {
                    before?.(msg);
                    if (!first && msg.instructions >= from) first = msg;
                    else if (first && msg.instructions >= to) {
                        view.onupdate = before;
                        const exits = (m) => m.vms.reduce((s, v) => s + v.counters.slice(0, 65).reduce((a, b) => a + b, 0), 0);
                        const secs = (msg.t - first.t) / 1000;
                        resolve({ ips: (msg.instructions - first.instructions) / secs, eps: (exits(msg) - exits(first)) / secs, secs });
                    }
                };
            }),
        [FROM, FROM + SPAN],
    );
    await page.close();
    if (errors.length) throw new Error(`page errors: ${errors.join('\n')}`);
    return figures;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const server = await startServer();
const browser = await startBrowser();
let status = 0;
try {
    const open = [];
    const closed = [];
    for (let r = 0; r < ROUNDS; r++) {
        for (const [panels, into, name] of [
            ['screen,serial,exits', open, 'exits panel open'],
            ['screen,serial', closed, 'exits panel left out'],
        ]) {
            const f = await measure(browser.context, server.url, panels);
            into.push(f.ips);
            log(`round ${r + 1}, ${name}: ${(f.ips / 1e6).toFixed(1)} M guest instructions/s over ${f.secs.toFixed(1)} s, ${Math.round(f.eps)} exits/s`);
        }
    }
    const a = median(open);
    const b = median(closed);
    log(`median: open ${(a / 1e6).toFixed(1)} M/s, left out ${(b / 1e6).toFixed(1)} M/s: the panel costs ${((1 - a / b) * 100).toFixed(1)} % (bound: 10 %)`);
} catch (err) {
    log(`FAILED: ${err.stack}`);
    status = 1;
} finally {
    await browser.stop();
    server.stop();
}
process.exit(status);
