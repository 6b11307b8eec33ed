// v386-machine.js — the embedding API: the <v386-machine> custom element, and the same
// thing as functions for pages that build machines from script. A course page needs only:
//
//   <script type="module" src="https://…/v386-machine.js"></script>
//   <v386-machine config="my-course/lab1.json"></v386-machine>
//
// or the config inline, as JSON in the element:
//
//   <v386-machine panels="screen,exits">
//     <script type="application/json">{ "vms": [ { "kernel": "/images/vmdemo_clock.img" } ] }</script>
//   </v386-machine>
//
// or from script:
//
//   import { createMachine } from './v386-machine.js';
//   const m = await createMachine(document.querySelector('#lab'), { vms: [ … ] });
//   m.pause(); m.start(); m.serial(0, new TextEncoder().encode('ls\n'));
//
// Attributes: `config` (a URL of the JSON, or JSON text), `panels` (a comma list overriding
// the config's: screen, serial, exits), `deterministic` ("true"/"false", overriding the
// config's), `autostart` ("false" builds the machine paused). The config's fields are in
// config.js and docs/embedding.md. Events: `v386-ready` once the VMs are built, `v386-error`
// (detail: the message) when the config or the machine fails. The element draws in its own
// light DOM, styled by embed.css (every rule scoped to the element or the view).

import { loadConfig, PANELS } from './config.js';
import { VmmView } from './vmm-view.js';

let styled = false;
/** Add embed.css to the document once: the element's look, scoped to it. */
function addStyles() {
    if (styled) return;
    styled = true;
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = new URL('./embed.css', import.meta.url).href;
    document.head.append(link);
}

/**
 * Build the VMs of `source` (a config object, JSON text or a URL) in `root` and run them.
 * `overrides` may set panels (array), deterministic, autostart. Returns the VmmView, with
 * `config` (the loaded config) on it.
 */
export async function createMachine(root, source, overrides = {}) {
    addStyles();
    const loaded = await loadConfig(source);
    const panels = new Set(overrides.panels ?? loaded.panels);
    if (overrides.deterministic !== undefined) loaded.vmm.deterministic = overrides.deterministic;
    const autostart = overrides.autostart ?? loaded.autostart;
    root.innerHTML = '';
    root.classList.add('v386-embed');
    if (loaded.title) {
        const h = document.createElement('div');
        h.className = 'v386-title';
        h.textContent = loaded.title;
        root.append(h);
    }
    const host = document.createElement('div');
    root.append(host);
    const view = new VmmView(host, { screen: panels.has('screen'), serial: panels.has('serial'), exits: panels.has('exits') });
    view.config = loaded;
    await view.boot(loaded.vmm, { autostart, font: loaded.font });
    return view;
}

export class V386Machine extends HTMLElement {
    static observedAttributes = ['config'];

    constructor() {
        super();
        this.view = null;
        this.building = null;
        this.inline = undefined;
    }

    connectedCallback() {
        if (!this.building) this.building = this.build();
    }

    disconnectedCallback() {
        this.view?.destroy();
        this.view = null;
        this.building = null;
    }

    attributeChangedCallback(name, old, value) {
        if (name === 'config' && old !== null && old !== value && this.isConnected) this.reload();
    }

    /** Rebuild from the current attributes (or from `source` when given). */
    reload(source) {
        this.view?.destroy();
        this.view = null;
        this.building = this.build(source);
        return this.building;
    }

    async build(source) {
        try {
            // The inline config is read once: building replaces the element's content.
            this.inline ??= this.querySelector('script[type="application/json"]')?.textContent ?? null;
            const src = source ?? this.getAttribute('config') ?? this.inline;
            if (!src) throw new Error('<v386-machine>: give a config attribute or a <script type="application/json"> inside');
            const overrides = {};
            const panels = this.getAttribute('panels');
            if (panels !== null) {
                overrides.panels = panels.split(',').map((p) => p.trim()).filter(Boolean);
                const bad = overrides.panels.find((p) => !PANELS.includes(p));
                if (bad) throw new Error(`<v386-machine>: unknown panel '${bad}' (known: ${PANELS.join(', ')})`);
            }
            const det = this.getAttribute('deterministic');
            if (det !== null) overrides.deterministic = det !== 'false';
            if (this.getAttribute('autostart') === 'false') overrides.autostart = false;
            this.view = await createMachine(this, src, overrides);
            this.view.onerror = (message) => this.fail(message);
            this.dispatchEvent(new CustomEvent('v386-ready', { detail: { vms: this.view.config.vmm.vms.length } }));
        } catch (err) {
            this.fail(err.message || String(err));
        }
    }

    fail(message) {
        let el = this.querySelector(':scope > .v386-error');
        if (!el) {
            el = document.createElement('div');
            el.className = 'v386-error';
            el.setAttribute('role', 'alert');
            this.append(el);
        }
        el.textContent = `Error: ${message}`;
        this.dispatchEvent(new CustomEvent('v386-error', { detail: message }));
    }

    start() {
        this.view?.start();
    }

    pause() {
        this.view?.pause();
    }

    /** Bytes (or a string) typed on VM `vm`'s serial line. */
    serial(vm, data) {
        this.view?.serial(vm, typeof data === 'string' ? new TextEncoder().encode(data) : data);
    }
}

if (!customElements.get('v386-machine')) customElements.define('v386-machine', V386Machine);
