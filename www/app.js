// app.js — the v386 page: fetches the firmware and images, starts the emulator worker
// (worker.js, whose header documents the messages), draws its screen (vga.js), shows COM1
// in xterm.js and wires the controls.
//
// URL parameters: fda, hda, cdrom, kernel, initrd (image URLs), cmdline, mem (MiB),
// boot (letters a/c/d), clock (wall|deterministic), bios, vgabios (firmware URLs),
// autostart=0 (start paused). Without media the demo floppy /images/webdemo.img boots.
//
// Test hook: window.v386 = { state, screenText(), serialText(), terminalText(),
// canvasBlank(), send(msg) }.
import { Terminal } from './node_modules/@xterm/xterm/lib/xterm.mjs';
import { VgaScreen, fontFromVgaBios } from './vga.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const DEFAULTS = {
    bios: '/images/bios.bin',
    vgaBios: '/images/vgabios-stdvga.bin',
    fda: '/images/webdemo.img',
    // Guest timers at host speed, as people expect of a PC; ?clock=deterministic gives the
    // same run every time (the tests' choice).
    clock: 'wall',
};
const MEDIA = ['fda', 'hda', 'cdrom', 'kernel', 'initrd'];
const KIND_NAMES = { fda: 'floppy', hda: 'disk', cdrom: 'CD', kernel: 'kernel', initrd: 'initrd' };
const FLOPPY_MAX = 2949120; // 2.88 MB
const FLOPPY_SIZES = [737280, 1474560, FLOPPY_MAX]; // the geometries the controller knows

/** What the page knows; the e2e tests read it through window.v386.state. */
const state = {
    phase: 'loading', // loading | running | paused | stopped | error
    running: false,
    reason: '',
    booted: false,
    boots: 0, // machines built so far
    instructions: 0,
    mips: 0,
    busy: 0,
    screen: 'blank', // blank | WxH text | WxH graphics
    media: {}, // kind → name
    memoryMb: 0,
    error: null,
    serialBytes: 0,
};

// ---- the screen --------------------------------------------------------------------------

const canvas = $('screen');
const screen = new VgaScreen(canvas);
screen.onresize = fitScreen;

function fitScreen() {
    const wrap = $('screen-wrap');
    const { x: ax, y: ay } = screen.aspect;
    const w = canvas.width * ax;
    const h = canvas.height * ay;
    // Whole device pixels per emulated pixel, so every dot has the same size.
    const dpr = window.devicePixelRatio || 1;
    const availW = Math.max(wrap.clientWidth - 2, 100) * dpr;
    const availH = Math.max(window.innerHeight - 190, 200) * dpr;
    let scale = Math.max(1, Math.min(Math.floor(availW / w), Math.floor(availH / h), 4));
    if (w > availW) scale = availW / w; // too narrow for 1:1: shrink (no longer crisp)
    canvas.style.width = `${(w * scale) / dpr}px`;
    canvas.style.height = `${(h * scale) / dpr}px`;
}
window.addEventListener('resize', fitScreen);
new ResizeObserver(fitScreen).observe($('screen-wrap'));

function frame(now) {
    screen.draw(now);
    requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

function overlay(text) {
    const el = $('screen-overlay');
    el.textContent = text || '';
    el.hidden = !text;
}

// ---- the serial terminal -------------------------------------------------------------

const term = new Terminal({
    cols: 80,
    rows: 27,
    fontSize: 12,
    fontFamily: '"DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
    cursorBlink: true,
    convertEol: false,
    scrollback: 5000,
    theme: {
        background: '#0b0e14',
        foreground: '#d7dde8',
        cursor: '#7aa2f7',
        selectionBackground: '#33467c',
    },
});
term.open($('terminal'));
const encoder = new TextEncoder();
term.onData((data) => send({ type: 'serial', bytes: encoder.encode(data) }));
$('btn-clear').addEventListener('click', () => term.clear());

let serialText = '';
const serialDecoder = new TextDecoder();
const debugconDecoder = new TextDecoder();

// ---- the worker --------------------------------------------------------------------------

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
function send(msg, transfer = []) {
    worker.postMessage(msg, transfer);
}

const textRequests = new Map();
let nextRequest = 1;

worker.onmessage = ({ data: msg }) => {
    switch (msg.type) {
        case 'ready':
            break;
        case 'booted':
            state.booted = true;
            state.boots++;
            state.memoryMb = msg.memoryMb;
            state.clock = msg.clock;
            state.error = null;
            overlay('');
            updateMachineInfo(msg.media);
            break;
        case 'state':
            Object.assign(state, {
                running: msg.running,
                reason: msg.reason,
                instructions: msg.instructions,
                mips: msg.mips,
                ips: msg.ips,
                busy: msg.busy,
            });
            state.phase = msg.reason === 'error' ? 'error' : msg.running ? 'running' : msg.reason === 'paused' ? 'paused' : 'stopped';
            updateStatus();
            break;
        case 'serial': {
            term.write(msg.bytes);
            state.serialBytes += msg.bytes.length;
            serialText += serialDecoder.decode(msg.bytes, { stream: true });
            if (serialText.length > 1 << 20) serialText = serialText.slice(-(1 << 19));
            break;
        }
        case 'debugcon': {
            const box = $('debugcon');
            box.hidden = false;
            const pre = $('debugcon-text');
            pre.textContent = (pre.textContent + debugconDecoder.decode(msg.bytes, { stream: true })).slice(-20000);
            pre.scrollTop = pre.scrollHeight;
            break;
        }
        case 'text':
            screen.text(msg);
            setScreenInfo(`${msg.cols}×${msg.rows} text`);
            break;
        case 'pixels':
            screen.pixels(msg);
            setScreenInfo(`${msg.width}×${msg.height} graphics`);
            break;
        case 'blank':
            screen.blank();
            setScreenInfo('no signal');
            break;
        case 'screenText': {
            const resolve = textRequests.get(msg.id);
            textRequests.delete(msg.id);
            resolve?.(msg.text);
            break;
        }
        case 'error':
            showError(msg.message, msg.detail, msg.where);
            break;
        default:
            console.warn('v386: unknown message from the worker', msg);
    }
};
worker.onerror = (e) => showError(e.message || 'the emulator worker failed to load', `${e.filename || ''}:${e.lineno || ''}`);

function setScreenInfo(text) {
    if (state.screen === text) return;
    state.screen = text;
    state.screenBoot = state.boots; // which machine set this mode
    $('screen-info').textContent = text;
}

// ---- status bar and controls ---------------------------------------------------------

const REASONS = {
    halted: 'Halted (HLT with nothing to wake the CPU)',
    shutdown: 'Shut down (triple fault)',
    poweroff: 'Powered off',
    error: 'Error',
    paused: 'Paused',
};

function updateStatus() {
    const label = state.running
        ? state.reason === 'halted'
            ? 'Running · CPU halted'
            : 'Running'
        : REASONS[state.reason] || (state.reason.startsWith('debug-exit') ? `Exited (${state.reason})` : 'Stopped');
    $('st-state-text').textContent = label;
    $('st-state').dataset.phase = state.phase;
    $('st-mips').textContent = state.running && state.mips > 0 ? state.mips.toFixed(1) : '–';
    $('st-mips').parentElement.title = state.running
        ? `emulation speed; ${(state.ips / 1e6).toFixed(2)} M instructions per second of real time`
        : '';
    $('st-instr').textContent = Math.round(state.instructions).toLocaleString('en-US');
    $('st-busy').textContent = state.running ? `${Math.round(state.busy * 100)}%` : '–';
    $('btn-start').disabled = state.running || !state.booted || state.phase === 'error';
    $('btn-pause').disabled = !state.running;
    $('btn-step').disabled = state.running || !state.booted || state.phase === 'error';
    $('btn-reset').disabled = !state.booted || state.phase === 'error';
}

function updateMachineInfo(kinds) {
    const parts = [`${state.memoryMb} MB`, state.clock === 'wall' ? 'wall clock' : 'deterministic clock'];
    for (const k of kinds) parts.push(`${KIND_NAMES[k]}: ${state.media[k] ?? k}`);
    $('st-machine').textContent = parts.join(' · ');
    $('cmdline-form').hidden = !kinds.includes('kernel');
}

$('btn-start').addEventListener('click', () => send({ type: 'start' }));
$('btn-pause').addEventListener('click', () => send({ type: 'pause' }));
$('btn-step').addEventListener('click', () => send({ type: 'step', count: 1 }));
$('btn-reset').addEventListener('click', () => {
    send({ type: 'reset' });
    canvas.focus();
});
$('speed').addEventListener('input', (e) => {
    const pct = Number(e.target.value);
    $('speed-value').textContent = `${pct}%`;
    send({ type: 'speed', fraction: pct / 100 });
});
$('cmdline-form').addEventListener('submit', (e) => {
    e.preventDefault();
    send({ type: 'cmdline', text: $('cmdline').value });
    send({ type: 'restart' });
});

// ---- errors ----------------------------------------------------------------------------

function showError(message, detail = '', where = '') {
    state.error = message;
    state.phase = 'error';
    $('error-title').textContent = where ? `The emulator stopped with an error (${where})` : 'The emulator stopped with an error';
    $('error-message').textContent = message;
    $('error-detail').textContent = detail || '(no further details)';
    $('error-details').hidden = !detail;
    $('error').hidden = false;
    overlay('');
    updateStatus();
}
$('btn-dismiss').addEventListener('click', () => ($('error').hidden = true));
$('btn-restart').addEventListener('click', () => {
    $('error').hidden = true;
    state.error = null;
    send({ type: 'restart' });
});

// ---- keyboard capture on the screen --------------------------------------------------

const held = new Set();
canvas.addEventListener('keydown', (e) => {
    e.preventDefault();
    held.add(e.code);
    send({ type: 'key', code: e.code, down: true });
});
canvas.addEventListener('keyup', (e) => {
    e.preventDefault();
    held.delete(e.code);
    send({ type: 'key', code: e.code, down: false });
});
canvas.addEventListener('focus', () => setFocusChip(true));
canvas.addEventListener('blur', () => {
    // Release what is still down, or the guest sees a stuck key.
    for (const code of held) send({ type: 'key', code, down: false });
    held.clear();
    setFocusChip(false);
});
canvas.addEventListener('mousedown', () => canvas.focus());

function setFocusChip(focused) {
    const chip = $('focus-state');
    chip.textContent = focused ? '⌨ keyboard captured · click outside to release' : '⌨ click the screen to type';
    chip.classList.toggle('active', focused);
}

// ---- loading images: URL parameters, file picker, drag and drop ------------------------

async function fetchBytes(url, what) {
    overlay(`Loading ${what}…`);
    let res;
    try {
        res = await fetch(url);
    } catch (err) {
        throw new Error(`could not fetch ${what} from ${url}: ${err.message}`);
    }
    if (!res.ok) throw new Error(`could not fetch ${what} from ${url}: HTTP ${res.status} ${res.statusText}`);
    return new Uint8Array(await res.arrayBuffer());
}

const baseName = (url) => decodeURIComponent(String(url).split(/[?#]/)[0].split('/').pop() || url);

async function boot() {
    updateStatus();
    const config = {};
    const mem = params.get('mem');
    if (mem) config.memoryMb = Number.parseInt(mem, 10);
    config.clock = params.get('clock') || DEFAULTS.clock;
    if (params.get('boot')) config.boot = params.get('boot');

    const urls = {};
    for (const k of MEDIA) if (params.get(k)) urls[k] = params.get(k);
    if (!urls.fda && !urls.hda && !urls.cdrom && !urls.kernel) urls.fda = DEFAULTS.fda;

    // The VGA BIOS is fetched even for a kernel boot: its 8×16 font draws text modes that no
    // VGA BIOS has loaded a font for.
    const vgaBios = await fetchBytes(params.get('vgabios') || DEFAULTS.vgaBios, 'the VGA BIOS');
    screen.setFallbackFont(fontFromVgaBios(vgaBios));
    const bios = await fetchBytes(params.get('bios') || DEFAULTS.bios, 'the BIOS');
    const firmware = { bios, vgaBios: vgaBios.slice() };
    if (urls.kernel) {
        config.cmdline = params.get('cmdline') ?? 'console=ttyS0';
        $('cmdline').value = config.cmdline;
    } else {
        Object.assign(config, firmware);
    }
    for (const [kind, url] of Object.entries(urls)) {
        config[kind] = await fetchBytes(url, `${KIND_NAMES[kind]} image ${baseName(url)}`);
        state.media[kind] = baseName(url);
    }
    overlay('Starting…');
    send({ type: 'boot', config, firmware, run: params.get('autostart') !== '0' });
}

/** Which drive a file goes in, from its name and size. */
function guessKind(file) {
    const name = file.name.toLowerCase();
    if (/\.iso$/.test(name)) return 'cdrom';
    if (/initrd|initramfs|\.cpio(\.gz|\.xz)?$/.test(name)) return 'initrd';
    if (/vmlinu[xz]|bzimage|\.(bin|elf|lkrn)$/.test(name) && file.size > FLOPPY_MAX / 8) return 'kernel';
    if (FLOPPY_SIZES.includes(file.size) || (/\.(ima|flp|vfd)$/.test(name) && file.size <= FLOPPY_MAX)) return 'fda';
    return 'hda';
}

async function loadFiles(files, kind) {
    const list = [...files].map((file) => ({ file, kind: kind || guessKind(file) }));
    // With two files for a kernel pick (or a drop), the initrd is the one that looks like it.
    if (kind === 'kernel' && list.length > 1) for (const item of list) item.kind = guessKind(item.file) === 'initrd' ? 'initrd' : 'kernel';
    list.sort((a, b) => (a.kind === 'initrd') - (b.kind === 'initrd'));
    for (const { file, kind: k } of list) {
        if (k === 'initrd' && !state.media.kernel) {
            showError(`${file.name} looks like an initrd; load a kernel with it (pick both files at once).`);
            continue;
        }
        const bytes = new Uint8Array(await file.arrayBuffer());
        if (k === 'kernel') {
            for (const m of ['fda', 'hda', 'cdrom', 'initrd']) delete state.media[m];
        } else if (k !== 'initrd') {
            delete state.media.kernel;
            delete state.media.initrd;
        }
        state.media[k] = file.name;
        if (k === 'kernel' && !$('cmdline').value) $('cmdline').value = 'console=ttyS0';
        if (k === 'kernel') send({ type: 'cmdline', text: $('cmdline').value });
        $('error').hidden = true;
        send({ type: 'load', kind: k, bytes }, [bytes.buffer]);
    }
    canvas.focus();
}

const picker = $('file-input');
let pickKind = 'fda';
for (const button of document.querySelectorAll('[data-pick]')) {
    button.addEventListener('click', () => {
        pickKind = button.dataset.pick;
        picker.multiple = pickKind === 'kernel';
        picker.accept = { fda: '.img,.ima,.flp,.vfd,.dsk', hda: '.img,.raw,.dsk,.hdd', cdrom: '.iso', kernel: '' }[pickKind];
        picker.value = '';
        picker.click();
    });
}
picker.addEventListener('change', () => picker.files.length && loadFiles(picker.files, pickKind));

let dragDepth = 0;
window.addEventListener('dragenter', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    dragDepth++;
    $('drop').hidden = false;
});
window.addEventListener('dragleave', () => {
    if (--dragDepth <= 0) {
        dragDepth = 0;
        $('drop').hidden = true;
    }
});
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    $('drop').hidden = true;
    if (e.dataTransfer?.files.length) loadFiles(e.dataTransfer.files);
});

// ---- the test hook ---------------------------------------------------------------------

window.v386 = {
    state,
    /** The VGA text screen, one line per row (asks the worker's Machine). */
    screenText() {
        const id = nextRequest++;
        return new Promise((resolve) => {
            textRequests.set(id, resolve);
            send({ type: 'screenText', id });
        });
    },
    /** Everything COM1 sent, as text. */
    serialText: () => serialText,
    /** The xterm.js buffer, one line per row. */
    terminalText() {
        const buf = term.buffer.active;
        const lines = [];
        for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
        return lines.join('\n');
    },
    canvasBlank: () => screen.isBlank(),
    /** Where the text font comes from: 'guest' (VGA plane 2) or 'vga-bios' (the fallback). */
    fontSource: () => (screen.font && !screen.guestFontEmpty ? 'guest' : 'vga-bios'),
    send,
};

boot().catch((err) => showError(err.message, err.stack));
