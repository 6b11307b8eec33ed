// vmm-worker.js — runs the VMM (several VMs on the V386 extension) in a module Web
// Worker for vms.html, and publishes what each VM shows and the VM exits as they happen.
//
// Messages, page → worker:
//   {type:'boot', config}     config = {quantum?, deterministic?, vms:[{name?, ...MachineSpec}]} (images as
//                             Uint8Array); builds the VMM and starts it.
//   {type:'start'} {type:'pause'}
//   {type:'serial', vm, bytes} bytes typed on VM `vm`'s COM1.
//   {type:'key', vm, code, down} a PS/2 key on VM `vm`'s keyboard, by KeyboardEvent.code.
//
// Messages, worker → page:
//   {type:'ready'}
//   {type:'update', t, instructions, exitTotal, vms:[{name, state, screen, display, serial, counters}],
//    log:[{time, vm, reason, name, qual, eip, bytes}]}
//        about 10 times a second: each VM's screen as text and, when it changed, as the
//        message vga.js draws (`display`: screen-feed.js's text/pixels/blank), the serial
//        bytes since the last
//        update (Uint8Array), its counters (exits by reason number 0-64, then retired,
//        turns, preemptions, device-memory accesses), and the exits logged since the last
//        update (the newest LOG_ROWS at most), read in place from the wasm memory.
//   {type:'error', message}
import init, { Vmm, Screen, wasmMemory, exitReasonName } from '../pkg/v386.js';
import { ScreenFeed } from './screen-feed.js';

const TICK_MS = 16; // run for at most this long, then yield to the event loop
const UPDATE_MS = 100; // how often the page hears from us
const SLICE = 200_000; // guest instructions per call into the VMM
const LOG_ROWS = 200;

let v = null;
let running = false;
let lastUpdate = 0;
let seen = 0; // exits already published
let screens = []; // per VM: {screen: Screen, feed: ScreenFeed}
let forceScreens = true; // send whole screens (after a boot)
const names = new Map();
const reasonName = (n) => {
    if (!names.has(n)) names.set(n, exitReasonName(n));
    return names.get(n);
};

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

/** The exits logged since the last update: records of the ring (vmm::log::ExitRecord). */
function newExits() {
    const total = v.exitLogTotal();
    const len = v.exitLogLen();
    const size = v.exitRecordSize();
    const fresh = Math.min(total - seen, len, LOG_ROWS);
    seen = total;
    if (fresh <= 0) return [];
    // Views are made here, after the run: wasm memory may have grown since the last one.
    const view = new DataView(wasmMemory().buffer, v.exitLogPtr(), len * size);
    const rows = [];
    for (let k = total - fresh; k < total; k++) {
        const at = (k % len) * size;
        const time = Number(view.getBigUint64(at, true));
        const qual = view.getBigUint64(at + 8, true);
        const eip = view.getUint32(at + 16, true);
        const vm = view.getUint16(at + 20, true);
        const reason = view.getUint16(at + 22, true);
        const n = view.getUint8(at + 39);
        const bytes = [];
        for (let b = 0; b < n; b++) bytes.push(view.getUint8(at + 24 + b));
        rows.push({ time, vm, reason, name: reasonName(reason), qual: qual.toString(16), eip, bytes });
    }
    return rows;
}

function update() {
    const vms = [];
    const transfer = [];
    for (let i = 0; i < v.vmCount(); i++) {
        const serial = v.takeSerial(i);
        transfer.push(serial.buffer);
        const s = (screens[i] ??= { screen: new Screen(), feed: new ScreenFeed(wasmMemory) });
        const changed = v.refreshScreen(i, s.screen);
        const display = changed || forceScreens ? s.feed.take(s.screen, forceScreens) : null;
        if (display) transfer.push(...display.transfer);
        vms.push({
            name: v.vmName(i),
            state: v.vmState(i),
            screen: v.screenText(i),
            display: display?.msg ?? null,
            serial,
            counters: Array.from(v.counters(i)),
        });
    }
    forceScreens = false;
    post(
        { type: 'update', t: performance.now(), instructions: v.instructions(), exitTotal: v.exitLogTotal(), vms, log: newExits() },
        transfer,
    );
}

function tick() {
    if (!running || !v) return;
    const t0 = performance.now();
    let outcome = 'running';
    try {
        while (performance.now() - t0 < TICK_MS && outcome === 'running') outcome = v.run(SLICE);
        // 'waiting': wall-clock VMs all idle until a timer real time must reach.
        if (outcome === 'stopped') running = false;
        if (performance.now() - lastUpdate >= UPDATE_MS || !running) {
            lastUpdate = performance.now();
            update();
        }
    } catch (err) {
        running = false;
        post({ type: 'error', message: err?.message || String(err) });
        return;
    }
    setTimeout(tick, outcome === 'waiting' ? 2 : 0);
}

self.onmessage = (e) => {
    const msg = e.data;
    try {
        switch (msg.type) {
            case 'boot':
                if (v) v.free();
                v = new Vmm(msg.config);
                seen = 0;
                screens.forEach((s) => s.screen.free());
                screens = [];
                forceScreens = true;
                running = true;
                update();
                tick();
                break;
            case 'start':
                if (!running) {
                    running = true;
                    tick();
                }
                break;
            case 'pause':
                running = false;
                break;
            case 'serial':
                v?.serialInput(msg.vm, msg.bytes);
                break;
            case 'key':
                v?.key(msg.vm, msg.code, msg.down);
                break;
        }
    } catch (err) {
        running = false;
        post({ type: 'error', message: err?.message || String(err) });
    }
};

await init();
post({ type: 'ready' });
