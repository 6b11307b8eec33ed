#!/usr/bin/env node
// tests/node/bench.mjs — v386 (wasm, in node) against npm's v86 (JIT off and on) on the
// loops of the native benchmark (src/bin/bench.rs), in one run, on one boot-sector image.
//
//   node tests/node/bench.mjs [--quick] [--direct] [--no-warmup] [--only=v386,v86,v86-jit]
//                             [--reg=ITERATIONS] [--mem=ITERATIONS] [--rounds=N] [--pkg=DIR]
//
// The guest (tests/guests/bench_loops.asm, assembled here with nasm into
// .cache/images/bench_loops.img) writes 'R' / 'r' around the register loop and 'M' / 'm'
// around the paged memory loop to COM1. The timed region of a loop is the host time
// between its two markers; guest instructions in it = iterations x instructions per
// iteration (6 and 7, the counts are read from the image). Both emulators boot the image
// through the same SeaBIOS (.cache/images/bios.bin + vgabios-stdvga.bin); --direct starts
// v386 at 0000:7C00 without a BIOS instead.
//
// v386 is driven by run(CHUNK) from here: a marker is seen at the end of the chunk that
// wrote it, so v386's region runs from chunk end to chunk end, and the instructions in it
// are its own retired-instruction count over that region (printed next to the loop's
// count). v86 runs its own asynchronous loop; its serial bytes arrive synchronously from
// the guest's OUT, so the listener's performance.now() is the marker's time, and
// get_instruction_counter() read there checks the loop count.
//
// Warm-up: V8 first runs wasm through its baseline compiler (Liftoff) and recompiles hot
// functions with TurboFan in the background; v386's interpreter function is large and takes
// seconds to tier up, on a busy machine longer. So each emulator first runs the same image
// with a tenth of the iterations (untimed), and the timed run follows on a fresh instance.
// --no-warmup shows the cold figures.
//
// Rounds (--rounds, default 3; --quick: 1): the emulators run in turn, round after round,
// and each loop keeps its best round (the native benchmark's best of 3).
//
// Times are wall clock; the second table divides by process CPU time instead (all threads,
// V8's compiler threads included), which is steadier when other jobs share the host.
//
// A benchmark, not a test: it exits 0 whatever the speed, 1 only when something fails to
// run (an emulator does not boot, a marker never comes).

import { readFileSync, existsSync, statSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGES = path.join(ROOT, '.cache/images');
const ASM = path.join(ROOT, 'tests/guests/bench_loops.asm');
const IMG = path.join(IMAGES, 'bench_loops.img');
// --pkg=DIR benchmarks another build of the wasm package (an experiment's), default pkg/.
const PKG_DIR = path.resolve(process.argv.find((a) => a.startsWith('--pkg='))?.slice(6) ?? path.join(ROOT, 'pkg'));
const PKG_JS = path.join(PKG_DIR, 'v386.js');
const PKG_WASM = path.join(PKG_DIR, 'v386_bg.wasm');
const V86_DIR = path.join(ROOT, 'tests/node/node_modules/v86');

const MEMORY_MB = 32; // guest RAM, both emulators
const CHUNK = 1_000_000; // v386 instructions per run() call: < 1% of any timed region
const TIMEOUT_MS = 90_000; // per emulator run, boot included
const WARMUP_DIV = 10;

// The image's header (see bench_loops.asm) and its loops.
const SIG_OFF = 3;
const LOOPS = [
    { key: 'reg', off: 11, name: 'register loop', start: 'R', end: 'r', perIter: 6 },
    { key: 'mem', off: 15, name: 'memory loop, paging on', start: 'M', end: 'm', perIter: 7 },
];
const EMULATORS = [
    { id: 'v386', label: 'v386 wasm' },
    { id: 'v86', label: 'v86 interp' },
    { id: 'v86-jit', label: 'v86 JIT' },
];

// ---------------------------------------------------------------- arguments

const args = process.argv.slice(2);
const USAGE = 'node tests/node/bench.mjs [--quick] [--direct] [--no-warmup] [--only=v386,v86,v86-jit] [--reg=N] [--mem=N] [--rounds=N] [--pkg=DIR]';
for (const a of args) {
    if (!/^--(quick|direct|no-warmup|help|only=[\w,-]+|pkg=.+|reg=\d+|mem=\d+|rounds=\d+)$/.test(a)) {
        console.error(`bench: unknown argument ${a}\nusage: ${USAGE}`);
        process.exit(2);
    }
}
const flag = (name) => args.includes(`--${name}`);
const opt = (name) => args.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3);
if (flag('help')) {
    console.log(`usage: ${USAGE}`);
    process.exit(0);
}
const only = (opt('only') ?? 'v386,v86,v86-jit').split(',');
const direct = flag('direct');
const warmup = !flag('no-warmup');
const rounds = Number(opt('rounds') ?? (flag('quick') ? 1 : 3));

// ---------------------------------------------------------------- the image

function loadImage() {
    if (!existsSync(IMG) || statSync(ASM).mtimeMs > statSync(IMG).mtimeMs) {
        mkdirSync(IMAGES, { recursive: true });
        execFileSync('nasm', ['-f', 'bin', '-o', IMG, ASM], { stdio: 'inherit' });
    }
    const img = new Uint8Array(readFileSync(IMG));
    const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
    if (String.fromCharCode(...img.subarray(SIG_OFF, SIG_OFF + 8)) !== 'V386BNCH' || dv.getUint16(510, true) !== 0xaa55) {
        throw new Error(`${IMG}: not a bench_loops image (rebuild it from ${ASM})`);
    }
    const iters = {};
    for (const l of LOOPS) {
        iters[l.key] = opt(l.key) !== undefined ? Number(opt(l.key)) : dv.getUint32(l.off, true);
        if (flag('quick')) iters[l.key] = Math.floor(iters[l.key] / 10);
        iters[l.key] = Math.min(Math.max(iters[l.key], 1), 0xffffffff);
    }
    return { img: withIterations(img, iters), iters };
}

// A copy of the image with these loop counts.
function withIterations(img, iters) {
    const copy = img.slice();
    const dv = new DataView(copy.buffer);
    for (const l of LOOPS) dv.setUint32(l.off, iters[l.key], true);
    return copy;
}

// A fresh ArrayBuffer holding exactly these bytes (a Buffer's .buffer may be a shared pool
// larger than the file, and v86 takes an ArrayBuffer whole).
const ownBuffer = (u8) => u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);

const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
};

// The markers must arrive as the consecutive bytes "RrMm" (the guest writes nothing in
// between): the BIOS's own serial output (SeaBIOS's serial console writes "\x1b[0m", say)
// may hold the same letters, and any other byte between two markers restarts the match.
function markerMatcher() {
    const seq = 'RrMm';
    let marks = {};
    let i = 0;
    return {
        marks: () => marks,
        done: () => i === seq.length,
        feed(byte, at) {
            if (i === seq.length) return;
            const c = String.fromCharCode(byte);
            if (c !== seq[i]) {
                marks = {};
                i = 0;
                if (c !== seq[0]) return;
            }
            marks[c] = at();
            i++;
        },
    };
}

const printable = (bytes) => JSON.stringify(String.fromCharCode(...bytes.slice(-200)));

// Per loop: wall ms, CPU ms and the emulator's own instruction count between the markers.
function regions(marks) {
    const res = {};
    for (const l of LOOPS) {
        const a = marks[l.start];
        const b = marks[l.end];
        res[l.key] = { ms: b.t - a.t, cpuMs: b.cpu - a.cpu, counted: (b.icount - a.icount) >>> 0 };
    }
    return res;
}

// ---------------------------------------------------------------- v386

let v386 = null;
async function loadV386() {
    if (!v386) {
        v386 = await import(pathToFileURL(PKG_JS).href);
        v386.initSync({ module: readFileSync(PKG_WASM) });
    }
    return v386;
}

async function runV386(img, bios, vgaBios) {
    const { Machine, wasmMemory } = await loadV386();
    const config = { memoryMb: MEMORY_MB, fda: img, clock: 'deterministic' };
    if (!direct) Object.assign(config, { bios, vgaBios });
    const m = new Machine(config);
    try {
        const matcher = markerMatcher();
        const serial = [];
        const t0 = performance.now();
        for (;;) {
            const r = m.run(CHUNK);
            const t = performance.now();
            const out = m.takeSerial();
            if (out.length) {
                const at = { t, cpu: cpuNow(), icount: m.instructions() };
                for (const b of out) {
                    serial.push(b);
                    matcher.feed(b, () => at);
                }
            }
            if (matcher.done()) break;
            if (r !== 'running') throw new Error(`stopped (${r}) before the end marker; serial: ${printable(serial)}`);
            if (t - t0 > TIMEOUT_MS) throw new Error(`no end marker after ${TIMEOUT_MS / 1000} s; serial: ${printable(serial)}`);
        }
        const res = regions(matcher.marks());
        // The instructions of v386's chunk-aligned region are its own count.
        for (const l of LOOPS) res[l.key].instructions = res[l.key].counted;
        res.wasmMb = wasmMemory().buffer.byteLength / (1 << 20);
        return res;
    } finally {
        m.free();
    }
}

// ---------------------------------------------------------------- v86

async function runV86(img, bios, vgaBios, jit) {
    const { V86 } = await import(pathToFileURL(path.join(V86_DIR, 'build/libv86.mjs')).href);
    const matcher = markerMatcher();
    const serial = [];
    let emu;
    let timer;
    const done = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no end marker after ${TIMEOUT_MS / 1000} s; serial: ${printable(serial)}`)), TIMEOUT_MS);
        emu = new V86({
            // Without it v86 looks for build/v86.wasm relative to the working directory
            // (__dirname does not exist in an ES module).
            wasm_path: path.join(V86_DIR, 'build/v86.wasm'),
            memory_size: MEMORY_MB << 20,
            vga_memory_size: 2 << 20,
            bios: { buffer: ownBuffer(bios) },
            vga_bios: { buffer: ownBuffer(vgaBios) },
            fda: { buffer: ownBuffer(img) },
            boot_order: 0x321, // BootOrder.FLOPPY_HARDDISK_CD (its default when fda is given)
            autostart: true,
            disable_jit: !jit,
            disable_keyboard: true,
            disable_mouse: true,
            disable_speaker: true,
        });
        emu.add_listener('serial0-output-byte', (b) => {
            const at = { t: performance.now(), cpu: cpuNow(), icount: emu.get_instruction_counter() };
            serial.push(b);
            matcher.feed(b, () => at);
            if (matcher.done()) resolve();
        });
    });
    try {
        await done;
        await emu.stop();
        const res = regions(matcher.marks());
        const cpu = emu.v86.cpu;
        res.jitDisabled = cpu.wm?.exports?.get_jit_config ? !!cpu.wm.exports.get_jit_config(0) : 'unknown';
        res.wasmMb = cpu.wasm_memory.buffer.byteLength / (1 << 20);
        return res;
    } finally {
        clearTimeout(timer);
        await emu.destroy();
    }
}

// ---------------------------------------------------------------- report

const fmt = (x, w, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-').padStart(w);
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;

async function main() {
    const { img, iters } = loadImage();
    const bios = new Uint8Array(readFileSync(path.join(IMAGES, 'bios.bin')));
    const vgaBios = new Uint8Array(readFileSync(path.join(IMAGES, 'vgabios-stdvga.bin')));
    const warmImg = withIterations(img, Object.fromEntries(LOOPS.map((l) => [l.key, Math.max(1, Math.floor(iters[l.key] / WARMUP_DIV))])));
    const loopInstr = Object.fromEntries(LOOPS.map((l) => [l.key, iters[l.key] * l.perIter]));
    const v86version = JSON.parse(readFileSync(path.join(V86_DIR, 'package.json'), 'utf8')).version;

    console.log(`bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    console.log(`  image ${path.relative(ROOT, IMG)} (${img.length} bytes), guest RAM ${MEMORY_MB} MiB each`);
    for (const l of LOOPS) {
        console.log(`  ${l.name.padEnd(24)} ${iters[l.key]} iterations x ${l.perIter} instructions = ${(loopInstr[l.key] / 1e6).toFixed(1)} M guest instructions`);
    }
    console.log(`  v386: ${direct ? 'boot sector started at 0000:7C00 without a BIOS' : 'booted by SeaBIOS'}, run(${CHUNK / 1e6} M) chunks, deterministic clock`);
    console.log(`  v86 ${v86version}: booted by SeaBIOS; interpreter = disable_jit: true`);
    console.log(`  rounds: ${rounds}, emulators interleaved, each loop's best round kept`);
    console.log(`  warm-up: ${warmup ? `one untimed run at 1/${WARMUP_DIV} of the iterations per emulator first` : 'none (cold figures)'}`);

    const runners = {
        v386: () => runV386(img, bios, vgaBios),
        v86: () => runV86(img, bios, vgaBios, false),
        'v86-jit': () => runV86(img, bios, vgaBios, true),
    };
    const warmers = {
        v386: () => runV386(warmImg, bios, vgaBios),
        v86: () => runV86(warmImg, bios, vgaBios, false),
        'v86-jit': () => runV86(warmImg, bios, vgaBios, true),
    };
    // Rounds interleave the emulators (v386, v86, v86-jit, v386, ...) and each loop keeps
    // its best round, as the native benchmark keeps its best of 3: this machine's speed
    // drifts (v86's interpreter measured 49 and 85 M/s on the register loop an hour apart),
    // and interleaving exposes every emulator to the same drift.
    const results = {};
    let v386FirstMb;
    let failed = false;
    const active = EMULATORS.filter((e) => only.includes(e.id));
    if (warmup) {
        for (const e of active) {
            try {
                const w = await warmers[e.id]();
                if (e.id === 'v386') v386FirstMb = w.wasmMb;
            } catch (err) {
                failed = true;
                console.error(`  ${e.label}: warm-up FAILED: ${err.message}`);
            }
        }
    }
    const faster = (a, b) => (a.instructions ?? a.counted) / a.ms > (b.instructions ?? b.counted) / b.ms;
    for (let round = 1; round <= rounds && !failed; round++) {
        for (const e of active) {
            const t = performance.now();
            try {
                const r = await runners[e.id]();
                if (e.id === 'v386' && v386FirstMb === undefined) v386FirstMb = r.wasmMb;
                const best = results[e.id];
                if (!best) results[e.id] = r;
                else for (const l of LOOPS) if (faster(r[l.key], best[l.key])) best[l.key] = r[l.key];
                const rates = LOOPS.map((l) => `${l.key} ${((r[l.key].instructions ?? r[l.key].counted) / r[l.key].ms / 1000).toFixed(1)}`);
                console.log(`  round ${round}, ${e.label}: ${rates.join(', ')} M/s (${((performance.now() - t) / 1000).toFixed(1)} s)`);
            } catch (err) {
                failed = true;
                console.error(`  ${e.label}: FAILED: ${err.message}`);
            }
        }
    }

    // MIPS: instructions over the region. v386: its own count over its chunk-aligned region;
    // v86: the loop's count over the exact marker-to-marker region.
    const rate = (id, key, cpu) => {
        const r = results[id]?.[key];
        if (!r) return NaN;
        return (r.instructions ?? loopInstr[key]) / (cpu ? r.cpuMs : r.ms) / 1000;
    };
    const table = (title, cpu) => {
        console.log('');
        console.log(`${title.padEnd(24)} ${EMULATORS.map((e) => e.label.padStart(10)).join(' ')}  ${'v386/interp'.padStart(11)} ${'v386/JIT'.padStart(9)}`);
        for (const l of LOOPS) {
            const [a, b, c] = EMULATORS.map((e) => rate(e.id, l.key, cpu));
            console.log(`${l.name.padEnd(24)} ${[a, b, c].map((x) => fmt(x, 10)).join(' ')}  ${fmt(a / b, 10, 2)}x ${fmt(a / c, 8, 2)}x`);
        }
    };
    table('M guest instr/s (wall)', false);
    table('M guest instr/s (CPU)', true);

    console.log('');
    console.log('timed regions: M instructions by the emulator\'s own counter / wall s / CPU s');
    for (const l of LOOPS) {
        const cells = EMULATORS.map((e) => {
            const r = results[e.id]?.[l.key];
            return `${e.id} ${r ? `${(r.counted / 1e6).toFixed(2)} / ${(r.ms / 1000).toFixed(2)} / ${(r.cpuMs / 1000).toFixed(2)}` : '-'}`;
        });
        console.log(`  ${l.key} (loop ${(loopInstr[l.key] / 1e6).toFixed(2)} M): ${cells.join('; ')}`);
    }
    for (const id of ['v86', 'v86-jit']) {
        if (results[id]) console.log(`  ${id}: get_jit_config(0) (JIT disabled) = ${results[id].jitDisabled}`);
    }

    console.log('');
    if (results.v386) {
        const w = v386FirstMb;
        const verdict = w <= MEMORY_MB + 32 ? 'met' : 'NOT MET';
        const after = results.v386.wasmMb !== w ? ` (${results.v386.wasmMb.toFixed(1)} MiB after a second machine)` : '';
        console.log(`v386 wasm memory: ${w.toFixed(1)} MiB with one ${MEMORY_MB} MiB machine${after}; target <= guest RAM + 32 MiB: ${verdict}`);
    }
    for (const id of ['v86', 'v86-jit']) {
        if (results[id]) console.log(`${id} wasm memory: ${results[id].wasmMb.toFixed(1)} MiB with ${MEMORY_MB} MiB guest RAM`);
    }
    for (const [name, file] of [
        ['v386', PKG_WASM],
        ['v86', path.join(V86_DIR, 'build/v86.wasm')],
    ]) {
        if (!existsSync(file)) continue;
        const raw = readFileSync(file);
        console.log(`${name} wasm file: ${kib(raw.length)} raw, ${kib(gzipSync(raw, { level: 9 }).length)} gzip -9 (${path.relative(ROOT, file)})`);
    }

    const notes = [];
    const reg = rate('v386', 'reg', false);
    if (Number.isFinite(reg)) notes.push(`register loop ${reg.toFixed(0)} M/s (>= 150: ${reg >= 150 ? 'met' : 'NOT MET'})`);
    for (const l of LOOPS) {
        const q = rate('v386', l.key, false) / rate('v86', l.key, false);
        if (Number.isFinite(q)) notes.push(`${l.key} ${q.toFixed(2)}x v86 interp (>= 3: ${q >= 3 ? 'met' : 'NOT MET'})`);
    }
    if (notes.length) console.log(`targets (wall clock): ${notes.join('; ')}`);
    process.exit(failed ? 1 : 0);
}

main().catch((e) => {
    console.error(`bench: ${e.stack || e}`);
    process.exit(1);
});
