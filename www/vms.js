// vms.js — the VMs page: several machines as VMs under the VMM on the V386 extension
// (vmm-worker.js runs them), each VM's screen and serial line, and the VM exits: counts
// and rates by reason and VM, and the exit log.
//
// The default VMs: SeaBIOS booting the demo floppy, and the two demo kernels when the
// set-up built them (a clock driven by the PIT, and the sensitive instructions seen from
// inside a VM). URL parameters: linux=1 adds Debian's Linux (slow in a browser: minutes
// to its shell); quantum=N sets the instructions per VM turn; autostart=0 starts paused.

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

// ---- rendering ----------------------------------------------------------------------

const panels = []; // per VM: {screen, serial, state, text}
const history = []; // {t, counts: [per VM: counters]} for rates over the last second
let reasonNames = new Map(); // reason number → name, learned from the log

function panel(i, name) {
    const el = document.createElement('article');
    el.className = 'vm';
    el.dataset.vm = String(i);
    el.innerHTML = `<h2><span class="name"></span><span class="state"></span></h2><pre class="screen"></pre><pre class="serial"></pre>`;
    el.querySelector('.name').textContent = name;
    $('vms').append(el);
    return { screen: el.querySelector('.screen'), serial: el.querySelector('.serial'), state: el.querySelector('.state'), text: '' };
}

const decoder = new TextDecoder();

function showVms(vms) {
    vms.forEach((vm, i) => {
        const p = (panels[i] ??= panel(i, vm.name));
        p.state.textContent = vm.state;
        p.screen.textContent = vm.screen;
        if (vm.serial.length) {
            // Drop terminal escape sequences (SeaBIOS's serial console sends some).
            p.text += decoder.decode(vm.serial).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b./g, '').replace(/\r/g, '');
            p.text = p.text.slice(-4000);
            p.serial.textContent = p.text;
            p.serial.scrollTop = p.serial.scrollHeight;
        }
    });
}

const EXTRA = ['retired', 'turns', 'preemptions', 'device memory'];

function showCounters(msg) {
    history.push({ t: msg.t, counts: msg.vms.map((v) => v.counters) });
    while (history.length > 2 && msg.t - history[0].t > 1000) history.shift();
    const old = history[0];
    const dt = (msg.t - old.t) / 1000;
    const head = $('exit-head');
    if (head.children.length !== 1 + 2 * msg.vms.length) {
        head.innerHTML = '<th>reason</th>';
        for (const v of msg.vms) head.insertAdjacentHTML('beforeend', `<th>${v.name}</th><th>/s</th>`);
    }
    const rows = [];
    for (let r = 0; r < 65; r++) {
        if (!msg.vms.some((v) => v.counters[r] > 0)) continue;
        rows.push([reasonNames.get(r) ?? `reason ${r}`, r]);
    }
    for (let k = 0; k < EXTRA.length; k++) rows.push([EXTRA[k], 65 + k]);
    $('exit-body').innerHTML = rows
        .map(([name, r]) => {
            const cells = msg.vms
                .map((v, i) => {
                    const rate = dt > 0 ? Math.round((v.counters[r] - (old.counts[i]?.[r] ?? 0)) / dt) : 0;
                    return `<td>${v.counters[r]}</td><td class="rate">${rate}</td>`;
                })
                .join('');
            return `<tr data-reason="${name}"><td>${name}</td>${cells}</tr>`;
        })
        .join('');
    const exits = msg.vms.reduce((s, v) => s + v.counters.slice(0, 65).reduce((a, b) => a + b, 0), 0);
    $('exit-total').textContent = `${exits} in all, ${Math.round(msg.instructions / 1e6)} M guest instructions`;
}

const hex = (n, w) => n.toString(16).padStart(w, '0');
const logRows = [];

function showLog(msg) {
    for (const r of msg.log) {
        reasonNames.set(r.reason, r.name);
        logRows.unshift(r);
    }
    logRows.length = Math.min(logRows.length, 50);
    const vmName = (id) => msg.vms[id - 1]?.name ?? `vm${id}`;
    $('exit-log').innerHTML = logRows
        .map(
            (r) =>
                `<tr><td>${r.time}</td><td>${vmName(r.vm)}</td><td>${r.name}</td><td>${r.qual}</td>` +
                `<td>${hex(r.eip, 8)}</td><td>${r.bytes.map((b) => hex(b, 2)).join(' ')}</td></tr>`,
        )
        .join('');
}

function showError(message) {
    const el = $('error');
    el.hidden = false;
    el.textContent = `Error: ${message}`;
}

// ---- start ----------------------------------------------------------------------------

const worker = new Worker(new URL('./vmm-worker.js', import.meta.url), { type: 'module' });
let resolveReady;
const ready = new Promise((resolve) => (resolveReady = resolve));
worker.onmessage = (e) => {
    const msg = e.data;
    if (msg.type === 'ready') {
        resolveReady();
    } else if (msg.type === 'update') {
        showLog(msg);
        showVms(msg.vms);
        showCounters(msg);
        $('status').textContent = msg.vms.map((v) => `${v.name}: ${v.state}`).join(' · ');
    } else if (msg.type === 'error') {
        showError(msg.message);
    }
};
worker.onerror = (e) => showError(e.message || 'the worker failed to start');

$('btn-start').onclick = () => worker.postMessage({ type: 'start' });
$('btn-pause').onclick = () => worker.postMessage({ type: 'pause' });

try {
    const vms = await defaultVms();
    const config = { vms };
    if (params.get('quantum')) config.quantum = Number(params.get('quantum'));
    await ready;
    worker.postMessage({ type: 'boot', config });
    if (params.get('autostart') === '0') worker.postMessage({ type: 'pause' });
} catch (err) {
    showError(err.message || String(err));
}
