// vmm-worker.js — runs the VMM (several VMs, each under its technique) in a module Web
// Worker for a VMM view (vmm-view.js), publishes what each VM shows and the VM exits as
// they happen, and is the debugger's back end: break on exit, step, the paused VM's
// registers, and the exit log's disassembly (done here, on request, for the rows the
// page shows: the wasm instance that runs the VMs has the disassembler already).
//
// Messages, page → worker:
//   {type:'boot', config}     config = {quantum?, deterministic?, exitCostCycles?,
//                             vms:[{name?, technique?, ...MachineSpec}]} (images as
//                             Uint8Array); builds the VMM and starts it.
//   {type:'start'} {type:'pause'}
//   {type:'serial', vm, bytes} bytes typed on VM `vm`'s COM1.
//   {type:'key', vm, code, down} a PS/2 key on VM `vm`'s keyboard, by KeyboardEvent.code.
//   {type:'save', id}         the whole VMM as a snapshot file → {type:'saved', id, bytes}.
//   {type:'restore', bytes}   replace the VMM with a snapshot's (paused) → an update.
//   {type:'breakOn', reasons:[n…]}  stop at exits of these reason numbers ([] = never).
//   {type:'step', vm, max}    pause, then step VM `vm` (index) alone: max = 1 handles its
//                             pending exit or runs one instruction; a larger max handles it and
//                             runs on (through halts) up to the next exit, left pending (a
//                             software-monitor VM's next trap, handled).
//   {type:'state', vm}        ask for VM `vm`'s registers.
//   {type:'disasm', id, seqs, records}  records: Uint8Array of exit records (exitRecordSize()
//                             bytes each) to disassemble; seqs: their exit numbers.
//
// Messages, worker → page:
//   {type:'ready'}
//   {type:'reasons', list:[[n, name]…]}  the exit reasons of Table 8-1, after each boot.
//   {type:'update', t, running, instructions, exitTotal, exitCost, vms:[{name, technique,
//    techniqueName, state, screen, display, serial, counters, pending}], log, logFirst,
//    logDropped}
//        about 10 times a second while running (and after every pause, break and step):
//        each VM's technique (its key, "v386", "trap-and-emulate", …, and its display
//        name), its screen when it changed (else null), as text and as the message
//        vga.js draws (`display`: screen-feed.js's text/pixels/blank), the serial bytes since the last
//        update (Uint8Array),
//        its counters (exits by reason number 0-64, then retired, turns, preemptions,
//        device-memory accesses), the reason number of its pending exit (-1: none); `log`
//        is a copy of the exit records logged since the last update (Uint8Array, records
//        of vmm::log::ExitRecord end to end, transferred), the first being exit number
//        `logFirst`; `logDropped` were overwritten in the ring before we copied them.
//        `exitCost`: the modelled cycles of one exit (VmmConfig::exit_cost_cycles).
//   {type:'break', vm, reason, name}  run() stopped at an exit of a chosen reason (vm: index).
//   {type:'paused'} {type:'running'}  the run state changed.
//   {type:'stepped', vm, outcome, reason, trap}  a step ended ("break": exit `reason` is
//                             pending, or for a software-monitor VM trap `trap` was handled).
//   {type:'state', vm, rows}  rows: [group, name, text] (src/front/vmstate.rs).
//   {type:'disasm', id, seqs, texts}
//   {type:'error', message}
import init, { Vmm, Screen, wasmMemory, exitReasonName } from '../pkg/v386.js';
import { ScreenFeed } from './screen-feed.js';

const TICK_MS = 16; // run for at most this long, then yield to the event loop
const UPDATE_MS = 100; // how often the page hears from us
const SLICE = 200_000; // guest instructions per call into the VMM

let v = null;
let running = false;
let lastUpdate = 0;
let seen = 0; // exits already published
let screens = []; // per VM: {screen: Screen, feed: ScreenFeed}
let forceScreens = true; // send whole screens (after a boot)

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

/** The exit records logged since the last update, copied out of the ring in wasm memory. */
function newExits() {
    const total = v.exitLogTotal();
    const len = v.exitLogLen();
    const size = v.exitRecordSize();
    const fresh = Math.min(total - seen, len);
    const dropped = total - seen - fresh;
    const first = total - fresh;
    seen = total;
    const out = new Uint8Array(Math.max(fresh, 0) * size);
    if (fresh > 0) {
        // A view made here, after the run: wasm memory may have grown since the last one.
        const ring = new Uint8Array(wasmMemory().buffer, v.exitLogPtr(), len * size);
        const at = first % len;
        const n1 = Math.min(fresh, len - at);
        out.set(ring.subarray(at * size, (at + n1) * size), 0);
        if (n1 < fresh) out.set(ring.subarray(0, (fresh - n1) * size), n1 * size);
    }
    return { log: out, logFirst: first, logDropped: dropped };
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
            technique: v.vmTechnique(i),
            techniqueName: v.vmTechniqueName(i),
            state: v.vmState(i),
            // The text (for the page's text copy of the screen) only when it changed.
            screen: changed || forceScreens ? v.screenText(i) : null,
            display: display?.msg ?? null,
            serial,
            counters: Array.from(v.counters(i)),
            pending: v.pendingExit(i),
        });
    }
    forceScreens = false;
    const exits = newExits();
    transfer.push(exits.log.buffer);
    post(
        {
            type: 'update',
            t: performance.now(),
            running,
            instructions: v.instructions(),
            exitTotal: v.exitLogTotal(),
            exitCost: v.exitCostCycles(),
            vms,
            ...exits,
        },
        transfer,
    );
}

const sendState = (vm) => post({ type: 'state', vm, rows: v.guestState(vm) });

function tick() {
    if (!running || !v) return;
    const t0 = performance.now();
    let outcome = 'running';
    try {
        while (performance.now() - t0 < TICK_MS && outcome === 'running') outcome = v.run(SLICE);
        // 'waiting': wall-clock VMs all idle until a timer real time must reach.
        if (outcome === 'stopped' || outcome === 'break') running = false;
        if (performance.now() - lastUpdate >= UPDATE_MS || !running) {
            lastUpdate = performance.now();
            update();
        }
        if (outcome === 'break') {
            const vm = v.breakVm();
            const reason = v.breakReason();
            post({ type: 'break', vm, reason, name: exitReasonName(reason) });
            sendState(vm);
        }
    } catch (err) {
        running = false;
        post({ type: 'error', message: err?.message || String(err) });
        return;
    }
    if (outcome === 'waiting') setTimeout(tick, 2);
    else wake.port2.postMessage(null);
}

// The next tick as soon as pending messages are handled: a message to ourselves, since
// nested setTimeout(0) waits at least 4 ms (HTML's timer clamping), a fifth of each tick.
const wake = new MessageChannel();
wake.port1.onmessage = () => tick();

function pause() {
    if (!running) return;
    running = false;
    update();
    post({ type: 'paused' });
}

self.onmessage = (e) => {
    const msg = e.data;
    try {
        switch (msg.type) {
            case 'boot': {
                if (v) v.free();
                v = new Vmm(msg.config);
                seen = 0;
                screens.forEach((s) => s.screen.free());
                screens = [];
                forceScreens = true;
                const list = [];
                for (let n = 0; n < 65; n++) if (exitReasonName(n)) list.push([n, exitReasonName(n)]);
                post({ type: 'reasons', list });
                running = true;
                update();
                tick();
                break;
            }
            case 'start':
                if (!running && v) {
                    running = true;
                    post({ type: 'running' });
                    tick();
                }
                break;
            case 'pause':
                pause();
                break;
            case 'save': {
                // Between runs: the VMM's state is whole here (a break's pending exit too).
                const bytes = v.save();
                post({ type: 'saved', id: msg.id, bytes }, [bytes.buffer]);
                break;
            }
            case 'restore':
                pause();
                v.restore(msg.bytes);
                seen = v.exitLogTotal();
                screens.forEach((s) => s.screen.free());
                screens = [];
                forceScreens = true;
                update();
                post({ type: 'paused' });
                break;
            case 'serial':
                v?.serialInput(msg.vm, msg.bytes);
                break;
            case 'key':
                v?.key(msg.vm, msg.code, msg.down);
                break;
            case 'breakOn':
                v?.setBreakOn(Uint32Array.from(msg.reasons));
                break;
            case 'step': {
                if (!v) break;
                pause();
                const outcome = v.step(msg.vm, msg.max ?? 1);
                update();
                post({ type: 'stepped', vm: msg.vm, outcome, reason: v.pendingExit(msg.vm), trap: outcome === 'break' ? v.breakReason() : -1 });
                sendState(msg.vm);
                break;
            }
            case 'state':
                if (v && msg.vm >= 0 && msg.vm < v.vmCount()) sendState(msg.vm);
                break;
            case 'disasm': {
                const texts = v ? v.disassembleRecords(msg.records) : [];
                post({ type: 'disasm', id: msg.id, seqs: msg.seqs, texts });
                break;
            }
        }
    } catch (err) {
        running = false;
        post({ type: 'error', message: err?.message || String(err) });
    }
};

await init();
post({ type: 'ready' });
