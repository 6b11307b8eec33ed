// vmm-view.js — a VMM view: several machines as VMs under the VMM on the V386 extension,
// run by vmm-worker.js in a Web Worker; a panel per VM (its screen and serial line) and
// the exits panel (exits.js). The VMs page (vms.html) and the <v386-machine> element
// both mount one.
//
//   const view = new VmmView(root, { screen: true, serial: true, exits: true });
//   view.onupdate = (msg) => …; view.onerror = (message) => …;
//   await view.boot(config, { autostart: true }); view.pause(); view.start();
//
// `config` is what the worker's 'boot' message takes: {quantum?, deterministic?,
// vms:[{name?, ...MachineSpec}]} with images as Uint8Array (config.js's loadConfig makes one
// from JSON with image URLs).

import { ExitsPanel } from './exits.js';

const decoder = new TextDecoder();

/** One VM's panel: its name and state, its screen, its serial line. */
class VmPanel {
    constructor(parent, i, name, show) {
        const el = document.createElement('article');
        el.className = 'vm';
        el.dataset.vm = String(i);
        el.innerHTML = `<h2><span class="name"></span><span class="state"></span></h2><pre class="screen"></pre><pre class="serial"></pre>`;
        el.querySelector('.name').textContent = name;
        parent.append(el);
        this.el = el;
        this.screen = el.querySelector('.screen');
        this.serial = el.querySelector('.serial');
        this.state = el.querySelector('.state');
        this.text = '';
        this.screen.hidden = !show.screen;
        this.serial.hidden = !show.serial;
    }

    show(vm) {
        this.state.textContent = vm.state;
        this.screen.textContent = vm.screen;
        if (vm.serial.length) {
            // Drop terminal escape sequences (SeaBIOS's serial console sends some).
            this.text += decoder.decode(vm.serial).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b./g, '').replace(/\r/g, '');
            this.text = this.text.slice(-4000);
            this.serial.textContent = this.text;
            this.serial.scrollTop = this.serial.scrollHeight;
        }
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
    }

    receive(msg) {
        if (msg.type === 'ready') {
            this.resolveReady();
        } else if (msg.type === 'update') {
            msg.vms.forEach((vm, i) => (this.panels[i] ??= new VmPanel(this.vmsEl, i, vm.name, this.show)).show(vm));
            this.exits?.update(msg);
            this.onupdate?.(msg);
        } else if (msg.type === 'error') {
            this.fail(msg.message);
        } else {
            this.exits?.message(msg);
        }
    }

    fail(message) {
        if (this.onerror) this.onerror(message);
        else console.error(message);
    }

    /** Build the VMs of `config` and run them (unless `autostart` is false). */
    async boot(config, { autostart = true } = {}) {
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

    /** Bytes typed on VM `vm`'s serial line. */
    serial(vm, bytes) {
        this.worker.postMessage({ type: 'serial', vm, bytes });
    }

    destroy() {
        this.worker.terminate();
        this.root.innerHTML = '';
    }
}
