// worker.js — runs one v386 Machine in a module Web Worker, so the page never freezes.
//
// Messages, page → worker (postMessage objects, `type` first):
//   {type:'boot', config, firmware, run}
//                                   build a Machine from `config` (a MachineSpec object:
//                                   memoryMb, clock, bios, vgaBios, fda, hda, cdrom, boot,
//                                   kernel, initrd, cmdline); run=true starts it. `firmware`
//                                   ({bios, vgaBios}, optional) is kept for later disk loads
//                                   when `config` boots a kernel without them.
//   {type:'load', kind, bytes}      kind 'fda'|'hda'|'cdrom'|'kernel'|'initrd': put the image
//                                   in the config and rebuild the machine (keeping the BIOS;
//                                   a kernel replaces the BIOS boot, a disk replaces a kernel).
//   {type:'cmdline', text}          the kernel command line for the next (re)build.
//   {type:'restart'}                rebuild the machine from its config (power cycle).
//   {type:'start'} {type:'pause'}   run / stop the run loop.
//   {type:'step', count}            paused: run `count` instructions (default 1).
//   {type:'reset'}                  the reset button (CPU restarts in the BIOS).
//   {type:'speed', fraction}        share of each tick the emulator may run (0.01..1).
//   {type:'key', code, down}        a PS/2 key by KeyboardEvent.code.
//   {type:'typeText', text}         ASCII text typed on the keyboard.
//   {type:'serial', bytes}          Uint8Array for COM1.
//   {type:'screenText', id}         ask for the screen as text → {type:'screenText', id, text}.
//   {type:'panicForTest'}           make the wasm panic on purpose (the e2e test checks that
//                                   the panic's message reaches the error panel).
//
// Messages, worker → page:
//   {type:'ready'}                                   wasm initialised.
//   {type:'booted', media}                           a machine was built (media: kinds present).
//   {type:'state', running, reason, instructions, mips, ips, busy}
//                                                    about 4 times a second, and on changes;
//                                                    mips = emulation speed (millions of
//                                                    instructions per second while the guest
//                                                    computes; the last measured value while it
//                                                    idles), ips = instructions per second of
//                                                    real time, busy = share of host time spent
//                                                    in the emulator.
//   {type:'serial', bytes} {type:'debugcon', bytes}  guest output (Uint8Array, transferred).
//   {type:'text', …} {type:'pixels', …} {type:'blank'}
//                                                    the screen, when it changed: see
//                                                    screen-feed.js for their fields.
//   {type:'error', message, detail}                  an exception or wasm panic; the machine is
//                                                    paused and must be rebuilt ('restart').
import init, { Machine, Screen, wasmMemory } from '../pkg/v386.js';
import { ScreenFeed } from './screen-feed.js';

const TICK_MS = 16; // one tick: run, then publish screen and serial
const STATE_MS = 250; // how often the state (MIPS, instruction count) is posted

let m = null; // the Machine
let config = null; // the MachineSpec it was built from
let savedBios = null; // the BIOS images while a kernel boots without them
let running = false;
let broken = false; // a panic or exception: the machine must be rebuilt
let speed = 1;
let lastReason = 'paused';
let tickPending = false;
let panicText = ''; // what console_error_panic_hook printed

// The screen's arrays in wasm memory, and what the page already has of them.
let screen = null;
let feed = null;
// Speed accounting since the last state message.
let acct = { t0: performance.now(), i0: 0, busyMs: 0, fullMs: 0, fullInstr: 0 };
let mips = 0; // the last emulation speed measured on ticks the guest did not cut short
let lastState = 0;

// The wasm panic hook reports through console.error: keep its text for the error panel.
const consoleError = console.error.bind(console);
console.error = (...args) => {
    const text = args.map(String).join(' ');
    if (text.includes('panicked at')) panicText = text;
    consoleError(...args);
};

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

function fail(where, err) {
    running = false;
    broken = true;
    // A panic's text is "panicked at FILE:LINE:COL:\nMESSAGE\n\nStack:\n\n…" (the hook's format).
    const [panic, panicStack] = panicText.split('\n\nStack:\n\n');
    const message = panic || (err && err.message) || String(err);
    const detail = [panicStack, panic && err?.message ? `${err.name || 'Error'}: ${err.message}` : '', err?.stack]
        .filter(Boolean)
        .join('\n\n');
    post({ type: 'error', where, message, detail });
    panicText = '';
    postState('error');
}

/** Run `fn` on the machine; a throw (or a wasm panic) goes to the page's error panel. */
function guarded(where, fn) {
    if (!m || broken) return undefined;
    try {
        return fn();
    } catch (err) {
        fail(where, err);
        return undefined;
    }
}

// ---- building -----------------------------------------------------------------------

function cleanConfig(c) {
    const out = {};
    for (const [k, v] of Object.entries(c)) if (v !== undefined && v !== null && v !== '') out[k] = v;
    return out;
}

function build(run) {
    if (m) {
        try {
            m.free();
        } catch {
            // a machine that panicked may refuse to be freed; drop it
        }
        m = null;
    }
    running = false;
    broken = false;
    panicText = '';
    feed?.reset();
    acct = { t0: performance.now(), i0: 0, busyMs: 0, fullMs: 0, fullInstr: 0 };
    mips = 0;
    try {
        m = new Machine(cleanConfig(config));
    } catch (err) {
        fail('boot', err);
        return;
    }
    const media = ['fda', 'hda', 'cdrom', 'kernel', 'initrd'].filter((k) => config[k]);
    post({ type: 'booted', media, memoryMb: config.memoryMb ?? 32, clock: config.clock ?? 'deterministic' });
    publish(true);
    if (run) start();
    else postState('paused');
}

const BOOT_LETTER = { fda: 'a', hda: 'c', cdrom: 'd' };

function load(kind, bytes) {
    if (kind === 'kernel') {
        // A kernel boots without the BIOS; keep the BIOS images aside for a later disk.
        if (config.bios) savedBios = { bios: config.bios, vgaBios: config.vgaBios };
        Object.assign(config, { bios: undefined, vgaBios: undefined, fda: undefined, hda: undefined, cdrom: undefined, boot: undefined });
        config.kernel = bytes;
    } else if (kind === 'initrd') {
        config.initrd = bytes;
    } else {
        if (config.kernel || !config.bios) {
            Object.assign(config, savedBios ?? {});
            Object.assign(config, { kernel: undefined, initrd: undefined });
        }
        config[kind] = bytes;
        // Boot the image just loaded first, then the usual order.
        const first = BOOT_LETTER[kind];
        config.boot = first + 'acd'.replace(first, '');
    }
    build(true);
}

// ---- running --------------------------------------------------------------------------

function start() {
    if (!m || broken) return;
    running = true;
    postState('running');
    schedule(0);
}

const channel = new MessageChannel();
channel.port1.onmessage = tick;

function schedule(delayMs) {
    if (tickPending) return;
    tickPending = true;
    if (delayMs <= 0) channel.port2.postMessage(null);
    else setTimeout(tick, delayMs);
}

function tick() {
    tickPending = false;
    if (!running || !m) return;
    const budget = TICK_MS * speed;
    const t0 = performance.now();
    const i0 = m.instructions();
    const reason = guarded('run', () => m.runFor(budget));
    if (reason === undefined) return;
    const t1 = performance.now();
    acct.busyMs += t1 - t0;
    if (t1 - t0 >= budget * 0.8) {
        // a tick that used its whole budget measures the emulator's speed
        acct.fullMs += t1 - t0;
        acct.fullInstr += m.instructions() - i0;
    }
    publish(false);
    if (reason !== 'running' && reason !== 'halted') {
        // shutdown, poweroff, debug-exit: nothing more to run
        running = false;
        postState(reason);
        return;
    }
    if (reason !== lastReason || t1 - lastState >= STATE_MS) postState(reason);
    // An idle guest (halted, waiting for an interrupt) and a reduced speed leave the host idle.
    const rest = reason === 'halted' ? 20 : m.isIdle() ? 4 : TICK_MS * (1 - speed);
    schedule(rest >= 1 ? rest : 0);
}

function postState(reason) {
    lastReason = reason;
    const now = performance.now();
    const span = now - acct.t0;
    const instructions = m && !broken ? m.instructions() : 0;
    if (acct.fullMs > 50) mips = acct.fullInstr / acct.fullMs / 1000;
    const busy = span > 0 ? Math.min(1, acct.busyMs / span) : 0;
    const ips = span > 0 ? ((instructions - acct.i0) / span) * 1000 : 0;
    post({ type: 'state', running, reason, instructions, mips, ips, busy, speed });
    lastState = now;
    if (span > 1000 || !running) acct = { t0: now, i0: instructions, busyMs: 0, fullMs: 0, fullInstr: 0 };
}

// ---- publishing the screen and the serial line -------------------------------------------

/** Serial and debug-console output, then the screen when it changed (or `force`). */
function publish(force) {
    guarded('publish', () => {
        const serial = m.takeSerial();
        if (serial.length) post({ type: 'serial', bytes: serial }, [serial.buffer]);
        const dbg = m.takeDebugcon();
        if (dbg.length) post({ type: 'debugcon', bytes: dbg }, [dbg.buffer]);
        const changed = m.refreshScreen(screen);
        const out = changed || force ? feed.take(screen, force) : null;
        if (out) post(out.msg, out.transfer);
    });
}

// ---- commands --------------------------------------------------------------------------

const handlers = {
    boot({ config: c, firmware, run }) {
        config = c;
        savedBios = c.bios ? { bios: c.bios, vgaBios: c.vgaBios } : firmware ?? null;
        build(run);
    },
    load({ kind, bytes }) {
        if (!config) return;
        load(kind, bytes);
    },
    cmdline({ text }) {
        if (config) config.cmdline = text;
    },
    restart() {
        if (config) build(true);
    },
    start,
    pause() {
        running = false;
        postState('paused');
    },
    step({ count = 1 }) {
        if (running) return;
        guarded('step', () => (count === 1 ? m.step() : m.run(count)));
        publish(false);
        postState('paused');
    },
    reset() {
        guarded('reset', () => m.reset());
        publish(true);
        if (!running) postState('paused');
    },
    speed({ fraction }) {
        speed = Math.min(1, Math.max(0.01, Number(fraction) || 1));
    },
    key({ code, down }) {
        guarded('key', () => m.key(code, down));
    },
    typeText({ text }) {
        guarded('typeText', () => m.typeText(text));
    },
    serial({ bytes }) {
        guarded('serial', () => m.serialInput(bytes));
    },
    screenText({ id }) {
        const text = guarded('screenText', () => m.screenText()) ?? '';
        post({ type: 'screenText', id, text });
    },
    panicForTest() {
        guarded('panicForTest', () => m.panicForTest());
    },
};

const queue = [];
let ready = false;
self.onmessage = ({ data }) => {
    if (!ready) queue.push(data);
    else dispatch(data);
};

function dispatch(msg) {
    const handler = handlers[msg.type];
    if (!handler) {
        post({ type: 'error', where: 'protocol', message: `worker: unknown message type '${msg.type}'` });
        return;
    }
    try {
        handler(msg);
    } catch (err) {
        fail(msg.type, err);
    }
}

self.addEventListener('error', (e) => fail('worker', e.error || e.message));
self.addEventListener('unhandledrejection', (e) => fail('worker', e.reason));

init()
    .then(() => {
        screen = new Screen();
        feed = new ScreenFeed(wasmMemory);
        ready = true;
        post({ type: 'ready' });
        queue.splice(0).forEach(dispatch);
    })
    .catch((err) => fail('wasm init', err));
