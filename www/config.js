// config.js — a VMM view's configuration as JSON: what a course page gives the
// <v386-machine> element, what the page takes as ?config=, and what www/demo.json (the
// default demo) holds. docs/embedding.md documents the fields.
//
//   {
//     "title": "Two VMs",                 optional, shown above the view
//     "deterministic": true,              same exits in the same order every run (default);
//                                         false: the VMs follow the host's clock
//     "quantum": 100000,                  guest instructions per VM turn
//     "panels": ["screen", "serial", "exits"],   which panels to show (default: all)
//     "autostart": true,                  run as soon as it is built
//     "vgaFont": "/images/vgabios-stdvga.bin",   a VGA BIOS whose 8×16 font draws the screens
//                                         of guests that load no font (kernels booted without
//                                         a BIOS); by default a VM's own vgaBios
//     "vms": [ { "name": "clock", "memoryMb": 16, "kernel": "/images/vmdemo_clock.img" }, … ]
//   }
//
// A VM's fields are the machine's (src/machine/spec.rs MachineSpec: memoryMb, clock, bios,
// vgaBios, fda, hda, cdrom, boot, kernel, initrd, cmdline, rtcStart, debugExitPort) plus
// "name", "technique" (how the VMM runs it: "v386" by default, "paravirtual",
// "trap-and-emulate", "trap-and-emulate-psi", "scan-before-execute"; wasm's Vmm checks it)
// and "optional" (skip the VM when one of its images cannot be fetched). Images are
// URLs, resolved against the config's own URL (or the page's), fetched as bytes.

export const IMAGE_FIELDS = ['bios', 'vgaBios', 'fda', 'hda', 'cdrom', 'kernel', 'initrd'];
export const PANELS = ['screen', 'serial', 'exits'];
const VIEW_FIELDS = ['title', 'deterministic', 'quantum', 'panels', 'autostart', 'vgaFont', 'vms', 'exitCostCycles'];

/** A config error names the part of the config that is wrong. */
export class ConfigError extends Error {}

async function fetchBytes(url) {
    const res = await fetch(url);
    if (!res.ok) throw new ConfigError(`could not fetch ${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
}

/**
 * The JSON of a config from `source`: an object, JSON text, or the URL of a JSON file.
 * Returns {json, base}: the parsed object and the URL its image URLs are relative to.
 */
export async function readConfig(source, base = document.baseURI) {
    if (typeof source === 'object' && source !== null) return { json: source, base };
    const text = String(source).trim();
    if (text.startsWith('{')) {
        try {
            return { json: JSON.parse(text), base };
        } catch (err) {
            throw new ConfigError(`config: not valid JSON (${err.message})`);
        }
    }
    const url = new URL(text, base).href;
    const res = await fetch(url);
    if (!res.ok) throw new ConfigError(`config: could not fetch ${url}: HTTP ${res.status}`);
    try {
        return { json: await res.json(), base: url };
    } catch (err) {
        throw new ConfigError(`config: ${url} is not valid JSON (${err.message})`);
    }
}

/**
 * Check a config and fetch its images. Returns
 * {title, panels: Set, autostart, font, vmm: {deterministic, quantum?, vms: [{name, ...MachineSpec}]}}
 * (font: the bytes of `vgaFont`, or null)
 * where `vmm` is what the worker's 'boot' message (and wasm's `new Vmm`) takes.
 */
export async function loadConfig(source, base = document.baseURI) {
    const { json, base: from } = await readConfig(source, base);
    if (typeof json !== 'object' || Array.isArray(json)) throw new ConfigError('config: must be a JSON object');
    for (const key of Object.keys(json)) {
        if (!VIEW_FIELDS.includes(key)) throw new ConfigError(`config: unknown field '${key}' (known: ${VIEW_FIELDS.join(', ')})`);
    }
    if (!Array.isArray(json.vms) || json.vms.length === 0) throw new ConfigError("config: 'vms' must be a non-empty array");
    const panels = new Set(json.panels ?? PANELS);
    for (const p of panels) {
        if (!PANELS.includes(p)) throw new ConfigError(`config: unknown panel '${p}' (known: ${PANELS.join(', ')})`);
    }
    const vms = await Promise.all(
        json.vms.map(async (vm, i) => {
            if (typeof vm !== 'object' || vm === null) throw new ConfigError(`config: vms[${i}] must be an object`);
            const { optional = false, ...spec } = vm;
            try {
                await Promise.all(
                    IMAGE_FIELDS.filter((f) => typeof spec[f] === 'string').map(async (f) => {
                        spec[f] = await fetchBytes(new URL(spec[f], from).href);
                    }),
                );
            } catch (err) {
                if (optional) return null;
                throw new ConfigError(`config: vms[${i}] (${vm.name ?? 'unnamed'}): ${err.message}`);
            }
            return spec;
        }),
    );
    const vmm = { deterministic: json.deterministic ?? true, vms: vms.filter(Boolean) };
    if (json.quantum !== undefined) vmm.quantum = json.quantum;
    if (json.exitCostCycles !== undefined) vmm.exitCostCycles = json.exitCostCycles;
    if (vmm.vms.length === 0) throw new ConfigError('config: none of the VMs could be loaded');
    const font = typeof json.vgaFont === 'string' ? await fetchBytes(new URL(json.vgaFont, from).href) : null;
    return { title: json.title ?? '', panels, autostart: json.autostart ?? true, font, vmm };
}
