// vms.js — the VMs page: several machines as VMs under the VMM on the V386 extension
// (a VmmView: vmm-view.js), each VM's screen and serial line, and the VM exits.
//
// The default VMs: SeaBIOS booting the demo floppy, and the two demo kernels when the
// set-up built them (a clock driven by the PIT, and the sensitive instructions seen from
// inside a VM). URL parameters: linux=1 adds Debian's Linux (slow in a browser: minutes
// to its shell); quantum=N sets the instructions per VM turn; exitcost=N the modelled
// cycles of one exit (the exits panel's share of work); autostart=0 starts paused.

import { VmmView } from './vmm-view.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

async function fetchBytes(url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`could not fetch ${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
}

/** Fetch `url`, or null when the server does not have it (an optional image). */
async function maybeBytes(url) {
    try {
        return await fetchBytes(url);
    } catch {
        return null;
    }
}

async function defaultVms() {
    const [bios, vgaBios, floppy] = await Promise.all(
        ['/images/bios.bin', '/images/vgabios-stdvga.bin', '/images/webdemo.img'].map(fetchBytes),
    );
    const vms = [{ name: 'seabios', memoryMb: 16, bios, vgaBios, fda: floppy }];
    for (const name of ['clock', 'sensitive']) {
        const kernel = await maybeBytes(`/images/vmdemo_${name}.img`);
        if (kernel) vms.push({ name, memoryMb: 16, kernel });
    }
    if (params.get('linux') === '1') {
        const [kernel, initrd] = await Promise.all(['/images/vmlinuz', '/images/initramfs.cpio.gz'].map(fetchBytes));
        vms.push({ name: 'linux', memoryMb: 128, kernel, initrd, cmdline: 'console=ttyS0 cryptomgr.notests' });
    }
    return vms;
}

// ---- start ----------------------------------------------------------------------------

function showError(message) {
    const el = $('error');
    el.hidden = false;
    el.textContent = `Error: ${message}`;
}

const view = new VmmView($('view'));
view.onerror = showError;
view.onupdate = (msg) => ($('status').textContent = msg.vms.map((v) => `${v.name}: ${v.state}`).join(' · '));
$('btn-start').onclick = () => view.start();
$('btn-pause').onclick = () => view.pause();

try {
    const config = { vms: await defaultVms() };
    if (params.get('quantum')) config.quantum = Number(params.get('quantum'));
    if (params.get('exitcost')) config.exitCostCycles = Number(params.get('exitcost'));
    await view.boot(config, { autostart: params.get('autostart') !== '0' });
} catch (err) {
    showError(err.message || String(err));
}
