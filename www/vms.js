// vms.js — the VMs page: several machines as VMs under the VMM, each under its technique
// (a VmmView: vmm-view.js), each VM's screen and serial line, and the VM exits.
//
// The VMs come from a JSON config (config.js; docs/embedding.md): www/demo.json by default —
// the two demo kernels (a PIT clock; the sensitive instructions seen from inside a VM) on
// the V386 extension, the sensitive one again trap-and-emulated on the classic x86 (where
// SGDT and MOV r,CS give the monitor's values), and Debian's Linux when the set-up fetched it; examples/small.json has SeaBIOS booting the
// demo floppy beside the demo kernels.
// URL parameters: config=<URL or JSON> another config; deterministic=1|0 overrides the
// config's; linux=0 leaves Linux out; quantum=N instructions per VM turn; exitcost=N the
// modelled cycles of one exit (the exits panel's share of work); panels=a,b which panels
// to show (screen, serial, exits); autostart=0 starts paused.

import { loadConfig } from './config.js';
import { VmmView } from './vmm-view.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// ---- start ----------------------------------------------------------------------------

function showError(message) {
    const el = $('error');
    el.hidden = false;
    el.textContent = `Error: ${message}`;
}

let view = null;

/** Build the view for `loaded` (a loadConfig result) and boot its VMs. */
async function boot(loaded) {
    view?.destroy();
    const p = loaded.panels;
    view = new VmmView($('view'), { screen: p.has('screen'), serial: p.has('serial'), exits: p.has('exits') });
    window.v386vms = view; // for tests and the console
    view.onerror = showError;
    view.onupdate = (msg) => ($('status').textContent = msg.vms.map((v) => `${v.name}: ${v.state}`).join(' · '));
    $('deterministic').checked = loaded.vmm.deterministic;
    if (loaded.title) document.title = `v386 — ${loaded.title}`;
    await view.boot(loaded.vmm, { autostart: loaded.autostart, font: loaded.font });
}

let loaded = null;
$('btn-save').onclick = async () => {
    if (!view) return;
    const bytes = await view.save();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    a.download = `v386-${new Date().toISOString().replace(/[:.]/g, '-')}.v386snap`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
};
$('btn-restore').onclick = () => $('restore-file').click();
$('restore-file').onchange = async () => {
    const file = $('restore-file').files[0];
    if (file && view) view.restore(new Uint8Array(await file.arrayBuffer()));
    $('restore-file').value = '';
};
$('btn-start').onclick = () => view?.start();
$('btn-pause').onclick = () => view?.pause();
// The switch rebuilds the VMs: time's source is fixed when a machine is built.
$('deterministic').onchange = () => {
    if (!loaded) return;
    loaded.vmm.deterministic = $('deterministic').checked;
    boot(loaded).catch((err) => showError(err.message || String(err)));
};

try {
    loaded = await loadConfig(params.get('config') ?? new URL('demo.json', location.href).href);
    if (params.has('deterministic')) loaded.vmm.deterministic = params.get('deterministic') !== '0';
    if (params.get('linux') === '0') loaded.vmm.vms = loaded.vmm.vms.filter((v) => v.name !== 'linux');
    if (params.get('quantum')) loaded.vmm.quantum = Number(params.get('quantum'));
    if (params.get('exitcost')) loaded.vmm.exitCostCycles = Number(params.get('exitcost'));
    if (params.has('panels')) loaded.panels = new Set(params.get('panels').split(',').filter(Boolean));
    if (params.get('autostart') === '0') loaded.autostart = false;
    await boot(loaded);
} catch (err) {
    showError(err.message || String(err));
}
