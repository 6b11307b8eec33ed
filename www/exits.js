// exits.js — the exits panel of a VMM view: the live picture of VM exits and a small
// debugger. It renders into the element it is given and learns everything from the
// worker's messages (vmm-worker.js); `post` sends requests back to the worker.
//
//   const panel = new ExitsPanel(root, { post });
//   panel.update(msg);   // each {type:'update'} message from the worker
//   panel.message(msg);  // any other worker message: reasons, break, paused, running,
//                        // stepped, state, disasm
//
// What lives where in this file:
// - ExitsPanel: the toolbar (continue, pause, step, run to exit, the selected VM, the
//   run state), the counters table (exits by reason and VM with their rates; its
//   checkboxes are the filters by VM and reason and the reasons to break on), the share
//   of work guest vs VMM, and the glue.
// - RateChart: exits per second by reason, stacked, over the last 60 s (uPlot), for all
//   VMs or one.
// - ExitLog: the page's ring of exit records (copies of vmm::log::ExitRecord, 40 bytes
//   each, up to 2^17) and its virtualised list: fixed-height rows, only the visible ones
//   in the DOM, disassembled on demand by the worker (iced-x86 there).
// - RegisterView: the selected VM's registers when paused, values changed since the
//   previous pause or step highlighted.
import uPlot from './node_modules/uplot/dist/uPlot.esm.js';

const REC = 40; // bytes per exit record (vmm::log::ExitRecord, repr(C))
const LOG_CAP = 1 << 17; // records the page keeps
const ROW_H = 18; // px per log row: fixed, so the list can be virtualised
/** Milliseconds between redraws of the counters table and the chart. */
const DRAW_MS = 500;
const WINDOW_S = 60; // seconds of chart
const REASONS = 65; // reason numbers 0-64
const EXTRA = ['retired', 'turns', 'preemptions', 'device memory'];
const RUN_TO_EXIT = 10_000_000; // instruction cap of "run to exit"

const hex = (n, w) => (n >>> 0).toString(16).padStart(w, '0');
// One formatter for all numbers: toLocaleString would build one per call (slow at 10 Hz × 100 cells).
const NF = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const fmt = (n) => NF.format(Math.round(n));
/** Set an element's text only when it changes (most cells keep theirs from update to update). */
const setText = (el, text) => {
    if (el.textContent !== text) el.textContent = text;
};
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A colour per reason number, fixed so a reason keeps its colour in the chart and table. */
const COLOURS = {
    0: '#db4b4b', 1: '#73daca', 7: '#ff9e64', 9: '#b4f9f8', 10: '#e0af68', 12: '#9ece6a', 14: '#cfc9c2',
    18: '#bb9af7', 28: '#f7768e', 29: '#c0caf5', 30: '#7aa2f7', 31: '#2ac3de', 32: '#0db9d7', 48: '#ff007c',
    52: '#565f89', 64: '#d5b3ff',
};
const colour = (r) => COLOURS[r] ?? `hsl(${(r * 47) % 360} 60% 60%)`;

export class ExitsPanel {
    constructor(root, { post } = {}) {
        this.root = root;
        this.post = post ?? (() => {});
        this.reasons = []; // [[n, name]] of Table 8-1
        this.names = new Map(); // n → name
        this.vmNames = [];
        this.reasonOn = new Array(REASONS).fill(true); // the log/chart filter by reason
        this.vmOn = []; // the filter by VM
        this.breakOn = new Set();
        this.samples = []; // {t, counts: [per VM: counters]}, the last ~61 s
        this.running = true;
        this.selected = 0; // the VM the toolbar and register view act on
        this.exitCost = 12_617; // until the worker says (vmm::log::EXIT_COST_CYCLES)
        root.classList.add('exits-panel');
        root.innerHTML = `
<div class="xp-toolbar" role="toolbar" aria-label="Debugger">
  <button type="button" class="xp-continue" title="Run all VMs (handles a pending exit first)">▶ Continue</button>
  <button type="button" class="xp-pause" title="Stop all VMs where they are">❚❚ Pause</button>
  <button type="button" class="xp-step" title="The selected VM alone: one guest instruction, or the handling of its pending exit">Step</button>
  <button type="button" class="xp-next" title="The selected VM alone, up to its next exit">Run to exit</button>
  <label>VM <select class="xp-vm"></select></label>
  <span class="xp-status" aria-live="polite">running</span>
</div>
<section class="xp-regs" hidden aria-label="Registers of the selected VM"></section>
<h2>VM exits <span class="exit-total muted"></span></h2>
<div class="xp-shares"></div>
<div class="xp-model muted"></div>
<div class="xp-chart-bar">exits/s by reason, stacked, last ${WINDOW_S} s:
  <select class="xp-chart-vm" aria-label="Chart of"><option value="-1">all VMs</option></select></div>
<div class="xp-chart"></div>
<table class="exit-table">
  <thead><tr class="exit-head"></tr></thead>
  <tbody class="exit-body"></tbody>
  <tfoot class="exit-extra"></tfoot>
</table>
<h2>Exit log <span class="xp-log-count muted"></span></h2>
<div class="xp-log"></div>`;
        this.$ = (cls) => root.querySelector(`.${cls}`);
        this.chart = new RateChart(this.$('xp-chart'));
        this.log = new ExitLog(this.$('xp-log'), this);
        this.regs = new RegisterView(this.$('xp-regs'));
        this.$('xp-continue').onclick = () => this.post({ type: 'start' });
        this.$('xp-pause').onclick = () => this.post({ type: 'pause' });
        this.$('xp-step').onclick = () => this.post({ type: 'step', vm: this.selected, max: 1 });
        this.$('xp-next').onclick = () => this.post({ type: 'step', vm: this.selected, max: RUN_TO_EXIT });
        this.$('xp-vm').onchange = (e) => this.select(Number(e.target.value));
        this.$('xp-chart-vm').onchange = () => this.drawChart();
        // The table's checkboxes: filters by VM and reason, and the reasons to break on.
        this.$('exit-table').addEventListener('change', (e) => {
            const t = e.target;
            if (t.classList.contains('vmf')) this.vmOn[Number(t.dataset.vm)] = t.checked;
            else if (t.classList.contains('rf')) this.reasonOn[Number(t.dataset.n)] = t.checked;
            else if (t.classList.contains('brk')) {
                if (t.checked) this.breakOn.add(Number(t.dataset.n));
                else this.breakOn.delete(Number(t.dataset.n));
                this.post({ type: 'breakOn', reasons: [...this.breakOn] });
                return;
            } else return;
            this.log.refilter();
            this.drawChart();
        });
    }

    /** Is a record of VM index `vm` and reason `r` shown (the filters)? */
    shown(vm, r) {
        return this.vmOn[vm] !== false && this.reasonOn[r] !== false;
    }

    vmName(i) {
        return this.vmNames[i] ?? `vm${i + 1}`;
    }

    update(msg) {
        const t0 = performance.now();
        this.handle(msg);
        // Its cost, for the e2e test's figures: updates, total and worst milliseconds.
        const ms = performance.now() - t0;
        const [n, total, worst] = (this.root.dataset.updates ?? '0 0 0').split(' ').map(Number);
        this.root.dataset.updates = `${n + 1} ${(total + ms).toFixed(1)} ${Math.max(worst, ms).toFixed(1)}`;
    }

    handle(msg) {
        if (msg.vms.length !== this.vmNames.length || msg.vms.some((v, i) => v.name !== this.vmNames[i])) {
            this.vmNames = msg.vms.map((v) => v.name);
            this.vmOn = this.vmNames.map(() => true);
            this.samples = [];
            this.buildVmLists();
            this.buildTable();
        }
        this.exitCost = msg.exitCost ?? this.exitCost;
        this.setRunning(msg.running !== false, false);
        const counts = msg.vms.map((v) => v.counters);
        this.samples.push({ t: msg.t, counts, rates: null });
        this.samples[this.samples.length - 1].rates = this.ratesAt(this.samples.length - 1);
        while (this.samples.length > 2 && msg.t - this.samples[0].t > (WINDOW_S + 1) * 1000) this.samples.shift();
        this.log.append(msg.log, msg.logFirst, msg.logDropped ?? 0);
        // The table and the chart redraw twice a second (and whenever the VMs stop): at ten
        // a second they took the guests 14 % of their speed on two cores (the page's main
        // thread and its raster work compete with the worker; tests/node/vms-bench.mjs).
        if (msg.running === false || !(msg.t - this.drawnAt < DRAW_MS)) {
            this.drawnAt = msg.t;
            this.showCounters(msg);
            this.drawChart();
        }
    }

    message(msg) {
        switch (msg.type) {
            case 'reasons':
                this.reasons = msg.list;
                this.names = new Map(msg.list);
                this.buildTable();
                if (this.breakOn.size) this.post({ type: 'breakOn', reasons: [...this.breakOn] });
                break;
            case 'break':
                this.setRunning(false);
                this.select(msg.vm, false);
                this.status(`paused on ${msg.name} in ${this.vmName(msg.vm)}`, 'break');
                this.root.dataset.breakReason = msg.name;
                this.root.dataset.breakVm = this.vmName(msg.vm);
                break;
            case 'paused':
                this.setRunning(false);
                this.status('paused');
                this.post({ type: 'state', vm: this.selected });
                break;
            case 'running':
                this.setRunning(true);
                break;
            case 'stepped': {
                const name = (n) => this.names.get(n) ?? n;
                const at = msg.reason >= 0 ? `: at ${name(msg.reason)} (pending: the next step handles it)`
                    : msg.trap >= 0 ? `: at ${name(msg.trap)} (a monitor trap, handled)` : '';
                this.status(`stepped ${this.vmName(msg.vm)}${msg.outcome === 'stopped' ? ': it stopped' : at}`, at ? 'break' : '');
                break;
            }
            case 'state':
                if (msg.vm === this.selected) {
                    const first = this.regs.el.hidden;
                    this.regs.show(msg.vm, this.vmName(msg.vm), msg.rows);
                    // A break is news: bring the registers into view (below the sticky toolbar).
                    if (first || this.root.dataset.breakReason) this.root.scrollTo({ top: this.regs.el.offsetTop - this.$('xp-toolbar').offsetHeight - 8 });
                }
                break;
            case 'disasm':
                this.log.disassembled(msg);
                break;
        }
    }

    setRunning(running, announce = true) {
        if (running === this.running) return;
        this.running = running;
        this.root.classList.toggle('paused', !running);
        this.regs.stale(running);
        if (running) {
            delete this.root.dataset.breakReason;
            delete this.root.dataset.breakVm;
            this.status('running');
        } else if (announce) this.status('paused');
    }

    status(text, kind = '') {
        const el = this.$('xp-status');
        el.textContent = text;
        el.className = `xp-status ${kind}`;
    }

    /** Make VM `i` the one the toolbar and the register view act on. */
    select(i, ask = true) {
        this.selected = i;
        this.$('xp-vm').value = String(i);
        if (ask && !this.running) this.post({ type: 'state', vm: i });
    }

    buildVmLists() {
        const opts = this.vmNames.map((n, i) => `<option value="${i}">${esc(n)}</option>`).join('');
        this.$('xp-vm').innerHTML = opts;
        this.$('xp-vm').value = String(Math.min(this.selected, this.vmNames.length - 1));
        this.$('xp-chart-vm').innerHTML = `<option value="-1">all VMs</option>${opts}`;
        this.$('xp-shares').innerHTML = this.vmNames
            .map((n, i) => `<div class="xp-share" data-vm="${i}"><b>${esc(n)}</b> <span class="txt"></span><span class="bar"><span></span></span></div>`)
            .join('');
    }

    /** The counters table: a row per reason of Table 8-1, a pair of columns per VM. */
    buildTable() {
        if (!this.reasons.length || !this.vmNames.length) return;
        this.$('exit-head').innerHTML =
            `<th title="tick: show in the log and the chart">reason</th>` +
            this.vmNames.map((n, i) => `<th colspan="2"><label title="show this VM in the log and the chart"><input type="checkbox" class="vmf" data-vm="${i}" checked> ${esc(n)}</label></th>`).join('') +
            `<th title="pause when an exit of this reason happens">break</th>`;
        this.$('exit-body').innerHTML = this.reasons
            .map(
                ([n, name]) =>
                    `<tr data-reason="${name}" data-n="${n}"><td title="${name}: tick to show in the log and the chart"><label>` +
                    `<input type="checkbox" class="rf" data-n="${n}" ${this.reasonOn[n] ? 'checked' : ''}><span class="sw" style="background:${colour(n)}"></span>${name}</label></td>` +
                    this.vmNames.map(() => '<td class="n">0</td><td class="rate">0</td>').join('') +
                    `<td><input type="checkbox" class="brk" data-n="${n}" data-reason="${name}" ${this.breakOn.has(n) ? 'checked' : ''}></td></tr>`,
            )
            .join('');
        this.$('exit-extra').innerHTML = EXTRA.map(
            (name) => `<tr data-extra="${name}"><td>${name}</td>${this.vmNames.map(() => '<td class="n">0</td><td class="rate"></td>').join('')}<td></td></tr>`,
        ).join('');
    }

    /** The sample about a second before the newest (for rates), or the oldest. */
    secondAgo() {
        const s = this.samples;
        const last = s[s.length - 1];
        for (let k = s.length - 2; k >= 0; k--) if (last.t - s[k].t >= 1000) return s[k];
        return s[0];
    }

    showCounters(msg) {
        const last = this.samples[this.samples.length - 1];
        const old = this.secondAgo();
        const dt = (last.t - old.t) / 1000;
        const rate = (i, r) => (dt > 0 ? (last.counts[i][r] - (old.counts[i]?.[r] ?? 0)) / dt : 0);
        for (const tr of this.$('exit-body').children) {
            const r = Number(tr.dataset.n);
            let any = 0;
            msg.vms.forEach((v, i) => {
                const [n, s] = [tr.children[1 + 2 * i], tr.children[2 + 2 * i]];
                setText(n, fmt(v.counters[r]));
                setText(s, fmt(rate(i, r)));
                any += v.counters[r];
            });
            if (tr.dataset.count !== String(any)) {
                tr.dataset.count = String(any);
                tr.classList.toggle('zero', any === 0);
            }
            const pending = msg.vms.some((v) => v.pending === r);
            if (pending !== tr.classList.contains('pending')) tr.classList.toggle('pending', pending);
        }
        [...this.$('exit-extra').children].forEach((tr, k) => {
            msg.vms.forEach((v, i) => setText(tr.children[1 + 2 * i], fmt(v.counters[REASONS + k])));
        });
        const exitsOf = (c) => c.slice(0, REASONS).reduce((a, b) => a + b, 0);
        const total = msg.vms.reduce((s, v) => s + exitsOf(v.counters), 0);
        const totalRate = msg.vms.reduce((s, _v, i) => s + (dt > 0 ? (exitsOf(last.counts[i]) - exitsOf(old.counts[i] ?? [])) / dt : 0), 0);
        this.$('exit-total').textContent = `${fmt(total)} in all · ${fmt(totalRate)}/s · ${fmt(msg.instructions / 1e6)} M guest instructions`;
        this.$('exit-total').dataset.rate = String(totalRate);
        setText(this.$('xp-model'), `share of work: a model, 1 cycle per guest instruction, ${fmt(this.exitCost)} cycles per exit (exit + VMM + entry, first-generation VT-x: Adams & Agesen, ASPLOS 2006)`);
        // Share of work guest vs VMM, a cost model: one cycle per guest instruction, and
        // `exitCost` cycles per exit (exit + VMM handling + entry; VmmConfig::exit_cost_cycles).
        msg.vms.forEach((v, i) => {
            const el = this.$('xp-shares').children[i];
            if (!el) return;
            let retired = v.counters[REASONS] - (old.counts[i]?.[REASONS] ?? 0);
            let exits = exitsOf(v.counters) - exitsOf(old.counts[i] ?? []);
            const live = dt > 0 && retired + exits > 0;
            if (!live) [retired, exits] = [v.counters[REASONS], exitsOf(v.counters)];
            const vmm = exits * this.exitCost;
            const guest = retired + vmm > 0 ? (100 * retired) / (retired + vmm) : 100;
            el.querySelector('.txt').textContent =
                `${fmt(live ? exits / dt : exits)}${live ? ' exits/s' : ' exits'} · guest ${guest.toFixed(1)}% · VMM ${(100 - guest).toFixed(1)}%` +
                (live ? '' : ' (since boot)');
            el.querySelector('.bar > span').style.width = `${guest}%`;
            el.dataset.guest = guest.toFixed(2);
            el.title = `Model: 1 cycle per guest instruction, ${fmt(this.exitCost)} cycles per exit (exit, VMM, entry: first-generation VT-x, Adams & Agesen, ASPLOS 2006). Configure with exitCostCycles.`;
        });
    }

    /** Exits per second by VM and reason at sample `k`, against the sample about a second
     *  before it (computed once per sample: the chart redraws 10 times a second). */
    ratesAt(k) {
        const s = this.samples;
        let j = k - 1;
        while (j > 0 && s[k].t - s[j].t < 1000) j--;
        const dt = j >= 0 ? (s[k].t - s[j].t) / 1000 : 0;
        if (dt <= 0) return null;
        return s[k].counts.map((a, i) => {
            const b = s[j].counts[i];
            const r = new Float32Array(REASONS);
            if (b) for (let n = 0; n < REASONS; n++) r[n] = (a[n] - b[n]) / dt;
            return r;
        });
    }

    /** The chart for the VMs the chart selector and the VM filter pick. */
    drawChart() {
        const s = this.samples.filter((x) => x.rates);
        if (s.length < 2) return;
        const which = Number(this.$('xp-chart-vm').value);
        const vms = this.vmNames.map((_, i) => i).filter((i) => (which < 0 ? this.vmOn[i] : i === which));
        const now = s[s.length - 1].t;
        const xs = s.map((x) => (x.t - now) / 1000);
        const series = [];
        for (const [n, name] of this.reasons) {
            if (!this.reasonOn[n]) continue;
            const v = s.map((x) => vms.reduce((sum, i) => sum + (x.rates[i]?.[n] ?? 0), 0));
            if (v.some((r) => r > 0)) series.push([n, name, v]);
        }
        this.chart.draw(xs, series);
    }
}

/** Exits per second by reason, stacked (uPlot): cumulative series drawn top first, each
 *  filled down to zero, so each band's height is its reason's rate. */
class RateChart {
    constructor(el) {
        this.el = el;
        this.plot = null;
        this.key = '';
        this.raw = [];
        new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: 170 })).observe(el);
    }

    width() {
        return Math.max(200, this.el.clientWidth - 4);
    }

    /** `series`: [reason number, name, rates per x], bottom of the stack first. */
    draw(xs, series) {
        const key = series.map(([n]) => n).join(',');
        const top = [...series].reverse();
        if (!this.plot || key !== this.key) this.create(top);
        this.key = key;
        const cum = [];
        let acc = xs.map(() => 0);
        for (const [, , v] of series) {
            acc = acc.map((a, k) => a + v[k]);
            cum.push(acc);
        }
        this.raw = [xs, ...top.map(([, , v]) => v)];
        this.plot.setData([xs, ...cum.reverse()]);
        // For tests and curious readers: reasons with a non-zero rate in the window.
        this.el.dataset.nonzero = series.filter(([, , v]) => v.some((x) => x > 0)).map(([, name]) => name).join(',');
        this.el.dataset.series = String(series.length);
    }

    create(top) {
        this.plot?.destroy();
        const axis = { stroke: '#8a94a7', grid: { stroke: '#252c3a', width: 1 }, ticks: { stroke: '#252c3a', width: 1 } };
        this.plot = new uPlot(
            {
                width: this.width(),
                height: 170,
                legend: { live: true },
                cursor: { points: { show: false } },
                scales: { x: { time: false, range: () => [-WINDOW_S, 0] }, y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
                axes: [
                    { ...axis, values: (_u, ticks) => ticks.map((t) => `${t} s`) },
                    { ...axis, size: 56, values: (_u, ticks) => ticks.map((t) => (t >= 1000 ? `${t / 1000}k` : String(t))) },
                ],
                series: [
                    { label: 'time', value: (_u, v) => (v == null ? 'now' : `${v.toFixed(1)} s`) },
                    ...top.map(([n, name], k) => ({
                        label: name,
                        stroke: colour(n),
                        fill: `${colour(n)}b0`,
                        width: 1,
                        points: { show: false },
                        // The legend shows the reason's own rate, not the stacked sum.
                        // Away from the cursor, the newest rate.
                        value: (_u, _v, _si, i) => {
                            const v = this.raw[k + 1] ?? [];
                            return `${fmt(v[i ?? v.length - 1] ?? 0)}/s`;
                        },
                    })),
                ],
            },
            [[], ...top.map(() => [])],
            this.el,
        );
    }
}

/** The exit log: a ring of records on the page and a virtualised list over the ones the
 *  filters show, newest first. Only the rows in view exist in the DOM. */
class ExitLog {
    constructor(el, panel) {
        this.panel = panel;
        this.ring = new Uint8Array(LOG_CAP * REC);
        this.dv = new DataView(this.ring.buffer);
        this.seqs = new Float64Array(LOG_CAP); // exit number of each slot
        this.count = 0; // records ever appended (slot = index % LOG_CAP)
        this.dropped = 0;
        // The filtered list: a ring of record indices, oldest first.
        this.view = new Float64Array(LOG_CAP);
        this.vHead = 0;
        this.vLen = 0;
        this.disasm = new Map(); // exit number → text
        this.inflight = false;
        this.reqId = 0;
        el.innerHTML = `
<div class="xp-row xp-log-head"><span>time</span><span>VM</span><span>reason</span><span>qual</span><span>EIP</span><span>instruction</span></div>
<div class="xp-log-viewport" tabindex="0"><div class="xp-log-spacer"></div><div class="xp-log-rows"></div></div>`;
        this.vp = el.querySelector('.xp-log-viewport');
        this.spacer = el.querySelector('.xp-log-spacer');
        this.rowsEl = el.querySelector('.xp-log-rows');
        this.pool = [];
        // The scroll position and the viewport's height are kept from their events, so a
        // render reads no layout (a read would force a layout of the whole page first).
        this.top = 0;
        this.height = 324;
        this.vp.addEventListener('scroll', () => {
            this.top = this.vp.scrollTop;
            this.schedule();
        });
        // A row's bytes as its tooltip, made when the pointer gets there (not every render).
        this.rowsEl.addEventListener('mouseover', (e) => {
            const row = e.target.closest('.xp-row');
            if (!row) return;
            const at = Number(row.dataset.slot) * REC;
            const len = this.ring[at + 39] & 15;
            row.title = len ? [...this.ring.subarray(at + 24, at + 24 + len)].map((b) => hex(b, 2)).join(' ') : 'no instruction (an asynchronous exit)';
        });
        // Render timings, for the e2e test's figures.
        this.stats = { renders: 0, totalMs: 0, worstMs: 0 };
        this.el = el;
        new ResizeObserver(([e]) => {
            this.height = e.contentRect.height || this.height;
            this.schedule();
        }).observe(this.vp);
    }

    vmOf(slot) {
        return this.dv.getUint16(slot * REC + 20, true) - 1; // the tag: VM index + 1
    }

    reasonOf(slot) {
        return this.dv.getUint16(slot * REC + 22, true);
    }

    push(index) {
        if (this.vLen === LOG_CAP) {
            this.vHead = (this.vHead + 1) % LOG_CAP;
            this.vLen--;
        }
        this.view[(this.vHead + this.vLen) % LOG_CAP] = index;
        this.vLen++;
    }

    /** New records: `bytes` (REC each), the first being exit number `first`. */
    append(bytes, first, dropped) {
        if (!bytes) return;
        this.dropped += dropped;
        let n = bytes.length / REC;
        let seq = first;
        if (n > LOG_CAP) {
            bytes = bytes.subarray((n - LOG_CAP) * REC);
            seq += n - LOG_CAP;
            n = LOG_CAP;
        }
        let added = 0;
        for (let k = 0; k < n; ) {
            const slot = this.count % LOG_CAP;
            const m = Math.min(n - k, LOG_CAP - slot);
            this.ring.set(bytes.subarray(k * REC, (k + m) * REC), slot * REC);
            for (let q = 0; q < m; q++) {
                this.seqs[slot + q] = seq + k + q;
                if (this.panel.shown(this.vmOf(slot + q), this.reasonOf(slot + q))) {
                    this.push(this.count + q);
                    added++;
                }
            }
            this.count += m;
            k += m;
        }
        // Records that left the page's ring leave the list (from its old end).
        while (this.vLen && this.view[this.vHead] < this.count - LOG_CAP) {
            this.vHead = (this.vHead + 1) % LOG_CAP;
            this.vLen--;
        }
        // Rows arrive at the top: a reader scrolled down keeps looking at the same rows.
        this.spacer.style.height = `${this.vLen * ROW_H}px`;
        if (added && this.top > ROW_H / 2) this.vp.scrollTop = this.top += added * ROW_H;
        this.render();
    }

    refilter() {
        this.vHead = 0;
        this.vLen = 0;
        for (let i = Math.max(0, this.count - LOG_CAP); i < this.count; i++) {
            const slot = i % LOG_CAP;
            if (this.panel.shown(this.vmOf(slot), this.reasonOf(slot))) this.push(i);
        }
        this.spacer.style.height = `${this.vLen * ROW_H}px`;
        this.render();
    }

    schedule() {
        if (this.frame) return;
        this.frame = requestAnimationFrame(() => {
            this.frame = 0;
            this.render();
        });
    }

    /** Draw the rows in view; ask the worker to disassemble the ones it has not yet. */
    render() {
        const t0 = performance.now();
        const p = this.panel;
        const first = Math.min(Math.floor(this.top / ROW_H), Math.max(0, this.vLen - 1));
        // At most a screenful: without its style sheet the viewport would grow with its
        // rows, and each render would add more.
        const visible = Math.min(Math.ceil(this.height / ROW_H) + 1, 120);
        while (this.pool.length < visible) {
            const row = document.createElement('div');
            row.className = 'xp-row';
            row.innerHTML = '<span></span><span></span><span></span><span></span><span></span><span class="dis"></span>';
            this.rowsEl.append(row);
            this.pool.push(row);
        }
        this.rowsEl.style.transform = `translateY(${first * ROW_H}px)`;
        const missing = [];
        this.pool.forEach((row, j) => {
            const r = first + j;
            if (j >= visible || r >= this.vLen) {
                row.hidden = true;
                return;
            }
            row.hidden = false;
            const slot = this.view[(this.vHead + this.vLen - 1 - r) % LOG_CAP] % LOG_CAP;
            const at = slot * REC;
            const dv = this.dv;
            const time = dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
            const qlo = dv.getUint32(at + 8, true);
            const qhi = dv.getUint32(at + 12, true);
            const reason = this.reasonOf(slot);
            const len = dv.getUint8(at + 39) & 15;
            const seq = this.seqs[slot];
            const c = row.children;
            c[0].textContent = String(time);
            c[1].textContent = p.vmName(this.vmOf(slot));
            c[2].textContent = p.names.get(reason) ?? String(reason);
            c[2].style.color = colour(reason);
            c[3].textContent = qhi ? qhi.toString(16) + hex(qlo, 8) : qlo.toString(16);
            c[4].textContent = hex(dv.getUint32(at + 16, true), 8);
            const text = len === 0 ? '' : this.disasm.get(seq);
            c[5].textContent = text ?? '…';
            row.dataset.slot = String(slot);
            row.dataset.reason = p.names.get(reason) ?? '';
            if (text === undefined) missing.push(slot);
        });
        const key = this.vLen + this.count * 1e6 + this.dropped;
        if (key !== this.countsKey) {
            this.countsKey = key;
            p.$('xp-log-count').textContent =
                `(${fmt(this.vLen)} shown of ${fmt(Math.min(this.count, LOG_CAP))} kept, ${fmt(this.count)} received${this.dropped ? `, ${fmt(this.dropped)} lost` : ''}; newest first)`;
        }
        const ms = performance.now() - t0;
        this.stats.renders++;
        this.stats.worstMs = Math.max(this.stats.worstMs, ms);
        this.stats.totalMs += ms;
        this.el.dataset.render = `${this.stats.renders} ${this.stats.totalMs.toFixed(1)} ${this.stats.worstMs.toFixed(1)}`;
        if (missing.length && !this.inflight) {
            const records = new Uint8Array(missing.length * REC);
            missing.forEach((slot, k) => records.set(this.ring.subarray(slot * REC, slot * REC + REC), k * REC));
            this.inflight = true;
            p.post({ type: 'disasm', id: ++this.reqId, seqs: missing.map((s) => this.seqs[s]), records }, [records.buffer]);
        }
    }

    disassembled(msg) {
        this.inflight = false;
        msg.seqs.forEach((seq, k) => this.disasm.set(seq, msg.texts[k] ?? ''));
        // Keep the cache bounded: drop the oldest entries (a Map iterates in insertion order).
        if (this.disasm.size > 20_000) {
            let drop = this.disasm.size - 15_000;
            for (const key of this.disasm.keys()) {
                if (drop-- <= 0) break;
                this.disasm.delete(key);
            }
        }
        this.render();
    }
}

/** The selected VM's registers while paused; values changed since the previous snapshot
 *  of that VM (the last pause or step) are highlighted. */
class RegisterView {
    constructor(el) {
        this.el = el;
        this.snap = new Map(); // VM index → {prev: Map, cur: Map}
    }

    show(vm, name, rows) {
        const cur = new Map(rows.map(([, n, v]) => [n, v]));
        let s = this.snap.get(vm);
        const same = s && rows.every(([, n, v]) => s.cur.get(n) === v);
        if (!s) s = { prev: cur, cur };
        else if (!same) s = { prev: s.cur, cur };
        this.snap.set(vm, s);
        // "monitor": a VM under the software monitor (techniques 2–4) only; its "seg" and
        // "ctrl" rows are the processor's (the guest at ring 1), these the guest's view.
        const groups = { gpr: 'registers', seg: 'segments and tables', ctrl: 'control', exit: 'last exit', monitor: "software monitor (the guest's view)" };
        let html = `<h3>${esc(name)} <span class="muted">registers (changed since the last pause or step in colour)</span></h3><div class="xp-regs-grid">`;
        for (const [g, title] of Object.entries(groups)) {
            // No header for a group the VM has no rows in (a V386 VM has no monitor).
            if (!rows.some(([group]) => group === g)) continue;
            html += `<div class="xp-regs-group" data-group="${g}"><h4>${title}</h4>`;
            for (const [group, n, v] of rows) {
                if (group !== g) continue;
                const changed = s.prev.get(n) !== v;
                html += `<div class="reg${changed ? ' changed' : ''}" data-name="${esc(n)}"><span class="k">${esc(n)}</span><span class="v">${esc(v)}</span></div>`;
            }
            html += '</div>';
        }
        this.el.innerHTML = `${html}</div>`;
        this.el.hidden = false;
        this.el.classList.remove('stale');
    }

    stale(yes) {
        this.el.classList.toggle('stale', yes);
    }
}
