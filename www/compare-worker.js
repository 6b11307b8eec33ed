// compare-worker.js — runs the technique lab (src/lab, through src/web/lab.rs) in a module
// Web Worker for the compare page (compare.js): a column takes seconds of emulation, and
// here it cannot freeze the page. The guest's two builds are fetched once from /images/.
//
// Messages, page → worker:
//   {type:'run', id, iterations, exitCost}  run every column, in order; a newer 'run'
//                             abandons an older one between columns.
//
// Messages, worker → page:
//   {type:'ready', techniques:[{number, name, available}], benches:[name…],
//    defaults:{iterations, exitCost, mmioCost}}
//   {type:'start', id, technique}          a column begins
//   {type:'column', id, result, ms}        labRun's answer for one column (see
//                                          src/web/lab.rs) and the milliseconds it took
//   {type:'done', id, ms}                  every column answered
//   {type:'error', id, message}            the run could not start (an image missing)
import init, { labTechniques, labBenches, labDefaults, labRun } from '../pkg/v386.js';

const IMAGES = { native: '/images/nanobench.img', paravirtual: '/images/nanobench-pv.img' };

let images = null; // {native, paravirtual}: Uint8Array, fetched at the first run
let current = 0; // the id of the run the page wants; older loops stop when it changes
let techniques = [];

const post = (msg) => self.postMessage(msg);

async function fetchImage(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status} (scripts/build-web.sh assembles it)`);
    return new Uint8Array(await r.arrayBuffer());
}

async function run({ id, iterations, exitCost }) {
    current = id;
    try {
        images ??= { native: await fetchImage(IMAGES.native), paravirtual: await fetchImage(IMAGES.paravirtual) };
    } catch (e) {
        post({ type: 'error', id, message: String(e.message ?? e) });
        return;
    }
    const t0 = performance.now();
    for (const t of techniques) {
        if (current !== id) return;
        post({ type: 'start', id, technique: t.number });
        // Let the page see 'start' (and us see a newer 'run') before the column's seconds.
        await new Promise((r) => setTimeout(r, 0));
        if (current !== id) return;
        const c0 = performance.now();
        let result;
        try {
            result = labRun(t.number, images.native, images.paravirtual, iterations, exitCost);
        } catch (e) {
            // A panic in the emulator (a bug: labRun itself never throws) fails this column only.
            result = { ok: false, technique: t.number, name: t.name, notYet: false, error: `wasm: ${e.message ?? e}` };
        }
        post({ type: 'column', id, result, ms: performance.now() - c0 });
    }
    post({ type: 'done', id, ms: performance.now() - t0 });
}

self.onmessage = (e) => {
    if (e.data?.type === 'run') run(e.data);
};

try {
    await init();
    techniques = labTechniques();
    post({ type: 'ready', techniques, benches: labBenches(), defaults: labDefaults() });
} catch (e) {
    post({ type: 'error', id: 0, message: `loading the wasm: ${e.message ?? e}` });
}
