// vmm-view.js — a VMM view: several machines as VMs under the VMM, each under its
// technique (the V386 extension by default), run by vmm-worker.js in a Web Worker; a
// panel per VM (its name, technique, screen and serial line) and the exits panel
// (exits.js). The demo page (index.html) and the <v386-machine> element
// both mount one.
//
//   const view = new VmmView(root, { screen: true, serial: true, exits: true });
//   view.onupdate = (msg) => …; view.onerror = (message) => …;
//   await view.boot(config, { autostart: true }); view.pause(); view.start();
//
// `config` is what the worker's 'boot' message takes: {quantum?, deterministic?,
// vms:[{name?, technique?, ...MachineSpec}]} with images as Uint8Array (config.js's loadConfig makes one
// from JSON with image URLs).

import { ExitsPanel } from './exits.js';
import { VgaScreen, fontFromVgaBios } from './vga.js';
import { Terminal } from './node_modules/@xterm/xterm/lib/xterm.mjs';

const encoder = new TextEncoder();

/** What each technique is, for the badge's tooltip (src/vmm/technique.rs; docs/techniques.md). */
const TECHNIQUE_HELP = {
    v386: 'On the V386 extension: the guest at its own ring 0, exits to the VMM, second-level translation',
    paravirtual: 'On the V386 extension, a guest that calls the VMM by VCALL hypercalls',
    'trap-and-emulate': "Trap-and-emulate on the classic x86: a software monitor runs the guest kernel at ring 1 on shadow page tables; sensitive unprivileged instructions (SGDT, MOV r,CS, PUSHF…) give the monitor's values, unseen",
    'trap-and-emulate-psi': 'Trap-and-emulate with CR4.PSI: a software monitor; sensitive unprivileged instructions fault to it',
    'scan-before-execute': "Scan-before-execute: a software monitor scans the guest's code before it runs and puts breakpoints before sensitive instructions",
};

/** One VM's panel: its name, technique and state, its screen (a canvas drawn by vga.js, the keyboard
 *  while it has the focus; the text kept in a hidden <pre> for copying and tests), its
 *  serial line (an xterm.js terminal: typing sends bytes). */
class VmPanel {
    constructor(view, i, name, show) {
        const el = document.createElement('article');
        el.className = 'vm';
        el.dataset.vm = String(i);
        el.innerHTML =
            `<h2><span class="name"></span><span class="technique"></span><span class="state"></span><span class="kbd-hint"></span></h2>` +
            `<div class="vga-wrap"><canvas class="vga" tabindex="0"></canvas></div>` +
            `<pre class="screen" hidden></pre><div class="serial-term"></div>`;
        el.querySelector('.name').textContent = name;
        view.vmsEl.append(el);
        this.el = el;
        this.screen = el.querySelector('.screen');
        this.state = el.querySelector('.state');
        this.technique = el.querySelector('.technique');
        this.canvas = el.querySelector('.vga');
        this.canvas.setAttribute('aria-label', `${name}: screen (click to type)`);
        this.vga = new VgaScreen(this.canvas);
        if (view.font) this.vga.setFallbackFont(view.font);
        el.querySelector('.vga-wrap').hidden = !show.screen;
        this.captureKeys(view, i, el.querySelector('.kbd-hint'));
        this.term = null;
        el.querySelector('.serial-term').hidden = !show.serial;
        if (show.serial) {
            this.term = new Terminal({
                cols: 80,
                rows: 10,
                fontSize: 11,
                fontFamily: '"DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
                convertEol: false,
                scrollback: 2000,
                theme: { background: '#0a0c10', foreground: '#d7dde8', cursor: '#7aa2f7' },
            });
            this.term.open(el.querySelector('.serial-term'));
            this.term.onData((data) => view.serial(i, encoder.encode(data)));
        }
    }

    /** Keys typed on the focused canvas go to this VM's PS/2 keyboard. */
    captureKeys(view, i, hint) {
        const held = new Set();
        const canvas = this.canvas;
        const key = (e, down) => {
            e.preventDefault();
            if (down) held.add(e.code);
            else held.delete(e.code);
            view.worker.postMessage({ type: 'key', vm: i, code: e.code, down });
        };
        canvas.addEventListener('keydown', (e) => key(e, true));
        canvas.addEventListener('keyup', (e) => key(e, false));
        canvas.addEventListener('mousedown', () => canvas.focus());
        canvas.addEventListener('focus', () => (hint.textContent = '⌨ typing here'));
        canvas.addEventListener('blur', () => {
            // Release what is still down, or the guest sees a stuck key.
            for (const code of held) view.worker.postMessage({ type: 'key', vm: i, code, down: false });
            held.clear();
            hint.textContent = '';
        });
    }

    show(vm) {
        // Set on the first update, and again should a restored snapshot's VM differ.
        if (this.technique.dataset.technique !== vm.technique) {
            this.technique.dataset.technique = vm.technique;
            this.technique.textContent = vm.techniqueName;
            this.technique.title = TECHNIQUE_HELP[vm.technique] ?? '';
        }
        this.state.textContent = vm.state;
        if (vm.screen !== null) this.screen.textContent = vm.screen;
        const d = vm.display;
        if (d?.type === 'text') this.vga.text(d);
        else if (d?.type === 'pixels') this.vga.pixels(d);
        else if (d?.type === 'blank') this.vga.blank();
        if (vm.serial.length && this.term) this.term.write(vm.serial);
    }

    /** The serial line as text (the terminal's buffer, one line per row). */
    serialText() {
        if (!this.term) return '';
        const b = this.term.buffer.active;
        const lines = [];
        for (let y = 0; y < b.length; y++) lines.push(b.getLine(y)?.translateToString(true) ?? '');
        return lines.join('\n').replace(/\n+$/, '');
    }
}

export class VmmView {
    /**
     * @param {HTMLElement} root where the view draws itself
     * @param {{screen?: boolean, serial?: boolean, exits?: boolean}} options which panels
     *        to show (all by default)
     */
    constructor(root, options = {}) {
        this.show = { screen: options.screen !== false, serial: options.serial !== false };
        this.root = root;
        root.classList.add('vmm-view');
        root.innerHTML = `<section class="vms" aria-label="Virtual machines"></section>` + `<section class="exits" aria-label="VM exits"></section>`;
        this.vmsEl = root.querySelector('.vms');
        this.panels = [];
        this.onupdate = null;
        this.onerror = null;
        this.worker = new Worker(new URL('./vmm-worker.js', import.meta.url), { type: 'module' });
        const post = (msg, transfer) => this.worker.postMessage(msg, transfer ?? []);
        this.exits = options.exits === false ? null : new ExitsPanel(root.querySelector('.exits'), { post });
        if (!this.exits) {
            root.querySelector('.exits').hidden = true;
            root.classList.add('no-exits');
        }
        this.ready = new Promise((resolve) => (this.resolveReady = resolve));
        this.worker.onmessage = (e) => this.receive(e.data);
        this.worker.onerror = (e) => this.fail(e.message || 'the worker failed to start');
        this.font = null; // the 8×16 font for screens whose guest loaded none (vga.js)
        const frame = (now) => {
            if (!this.worker) return;
            for (const p of this.panels) p.vga.draw(now);
            requestAnimationFrame(frame);
        };
        requestAnimationFrame(frame);
    }

    receive(msg) {
        if (msg.type === 'ready') {
            this.resolveReady();
        } else if (msg.type === 'update') {
            msg.vms.forEach((vm, i) => (this.panels[i] ??= new VmPanel(this, i, vm.name, this.show)).show(vm));
            this.exits?.update(msg);
            this.onupdate?.(msg);
        } else if (msg.type === 'error') {
            this.fail(msg.message);
        } else if (msg.type === 'saved') {
            // save()'s own listener takes it.
        } else {
            this.exits?.message(msg);
        }
    }

    fail(message) {
        if (this.onerror) this.onerror(message);
        else console.error(message);
    }

    /**
     * Build the VMs of `config` and run them (unless `autostart` is false). `font` is a VGA
     * BIOS image whose 8×16 font draws the screens of guests that loaded no font of their
     * own (kernels booted without a BIOS); by default a VM's own VGA BIOS.
     */
    async boot(config, { autostart = true, font = null } = {}) {
        const rom = font ?? config.vms.find((vm) => vm.vgaBios)?.vgaBios;
        this.font = rom ? fontFromVgaBios(rom) : null;
        for (const p of this.panels) p.vga.setFallbackFont(this.font);
        await this.ready;
        this.worker.postMessage({ type: 'boot', config });
        if (!autostart) this.pause();
    }

    start() {
        this.worker.postMessage({ type: 'start' });
    }

    pause() {
        this.worker.postMessage({ type: 'pause' });
    }

    /** The whole machine (VMM and VMs) as a snapshot file's bytes. */
    save() {
        const id = (this.saves = (this.saves ?? 0) + 1);
        return new Promise((resolve) => {
            const done = (e) => {
                if (e.data.type !== 'saved' || e.data.id !== id) return;
                this.worker.removeEventListener('message', done);
                resolve(e.data.bytes);
            };
            this.worker.addEventListener('message', done);
            this.worker.postMessage({ type: 'save', id });
        });
    }

    /** Replace the machine with a snapshot's; it stays paused until `start()`. */
    restore(bytes) {
        this.worker.postMessage({ type: 'restore', bytes });
    }

    /** Bytes typed on VM `vm`'s serial line. */
    serial(vm, bytes) {
        this.worker.postMessage({ type: 'serial', vm, bytes });
    }

    destroy() {
        this.worker.terminate();
        this.worker = null;
        this.root.innerHTML = '';
    }
}
