// compare.js — the compare page: the technique lab (src/lab; docs/techniques.md) run in
// the browser, in compare-worker.js, and drawn as Adams & Agesen's table — a row per
// nanobenchmark, a column per technique, cycles per iteration — with a grouped bar chart
// of the same figures (uPlot, log scale), a table of instructions and exits per
// iteration, and each column's self-check line.
//
// URL parameters: iterations=N (default the lab's, 1000), exitcost=N cycles per exit
// (default the lab's, 12617; `exitCost` works too), autorun=0 waits for the Run button.
//
// For tests: <body data-lab="loading|running|done|error">; every column's cells carry
// data-technique=N, a filled cell data-filled="1" and its cycles per iteration in
// data-value; window.v386lab = {techniques, benches, results, times} (times in ms per
// column, from the worker).
import uPlot from './node_modules/uplot/dist/uPlot.esm.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

/** A colour per technique (column number), the same in the chart and the table heads. */
const COLOURS = { 1: '#8a94a7', 2: '#e0af68', 3: '#ff9e64', 4: '#bb9af7', 5: '#73daca', 6: '#7aa2f7' };
/** Chart slots per benchmark: one bar per technique and two empty ones between groups. */
const STRIDE = 8;

const NF = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
/** A count over N iterations as a figure per iteration. */
const perIteration = (total, n) => total / n;
/** As the CLI's table shows figures: whole when N divides the total, else two decimals
 *  (with thousands separators, for reading). */
const fmt = (x) => NF.format(x);
/** Host time a column took: 40 ms, 1.3 s. */
const duration = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

const lab = {
    techniques: [], // [{number, name}], from labTechniques()
    benches: [], // ["syscall", …], from labBenches()
    defaults: { iterations: 1000, exitCost: 12_617 },
    results: {}, // technique number → labRun's answer
    times: {}, // technique number → ms
    running: 0, // the column in progress (0: none)
    iterations: 0, // of the results shown
    runId: 0,
};
window.v386lab = lab;

const worker = new Worker(new URL('./compare-worker.js', import.meta.url), { type: 'module' });
let chart = null;

function setState(state, text) {
    document.body.dataset.lab = state;
    if (text != null) $('status').textContent = text;
}

function showError(message) {
    $('error').hidden = false;
    $('error').textContent = `Error: ${message}`;
}

/** A whole number from an input or URL parameter within [lo, hi], else null. */
function whole(text, lo, hi) {
    if (text == null || !/^\s*\d+\s*$/.test(text)) return null;
    const n = Number(text);
    return n >= lo && n <= hi ? n : null;
}

function start() {
    const iterations = whole($('iterations').value, 1, 1_000_000);
    const exitCost = whole($('exit-cost').value, 0, 0xffff_ffff);
    if (iterations == null || exitCost == null) {
        setState('error', 'iterations: 1 to 1000000; exit cost: 0 or more cycles');
        return;
    }
    $('error').hidden = true;
    lab.runId++;
    lab.results = {};
    lab.times = {};
    lab.iterations = iterations;
    lab.running = 0;
    render();
    setState('running', 'starting…');
    worker.postMessage({ type: 'run', id: lab.runId, iterations, exitCost });
}

worker.onmessage = (e) => {
    const m = e.data;
    if (m.id != null && m.id !== lab.runId && m.type !== 'ready') return; // an abandoned run
    switch (m.type) {
        case 'ready': {
            lab.techniques = m.techniques;
            lab.benches = m.benches;
            lab.defaults = m.defaults;
            const it = whole(params.get('iterations'), 1, 1_000_000) ?? m.defaults.iterations;
            const ec = whole(params.get('exitcost') ?? params.get('exitCost'), 0, 0xffff_ffff) ?? m.defaults.exitCost;
            $('iterations').value = it;
            $('exit-cost').value = ec;
            build();
            if (params.get('autorun') === '0') setState('idle', 'ready: press Run');
            else start();
            break;
        }
        case 'start': {
            lab.running = m.technique;
            const t = lab.techniques.find((t) => t.number === m.technique);
            const done = Object.keys(lab.results).length;
            setState('running', `running column ${m.technique}, ${t?.name} (${done + 1} of ${lab.techniques.length})…`);
            render();
            break;
        }
        case 'column':
            lab.results[m.result.technique] = m.result;
            lab.times[m.result.technique] = m.ms;
            lab.running = 0;
            render();
            break;
        case 'done': {
            const filled = lab.techniques.filter((t) => lab.results[t.number]?.ok).length;
            setState('done', `done in ${duration(m.ms)}: ${filled} of ${lab.techniques.length} columns, N = ${lab.iterations}`);
            render();
            break;
        }
        case 'error':
            showError(m.message);
            setState('error', 'failed');
            break;
    }
};
worker.onerror = (e) => {
    showError(`the lab's worker: ${e.message ?? 'failed to load'}`);
    setState('error', 'failed');
};

$('controls').addEventListener('submit', (e) => {
    e.preventDefault();
    start();
});

// ---- the tables ----------------------------------------------------------------------

/** Both tables' skeletons: a head cell and a cell per benchmark for every technique. */
function build() {
    const head = `<thead><tr><th scope="col">benchmark</th>${lab.techniques
        .map(
            (t) =>
                `<th scope="col" data-technique="${t.number}"><span class="sw" style="background:${COLOURS[t.number]}"></span>${t.number} ${esc(t.name)}<div class="sub muted"></div></th>`,
        )
        .join('')}</tr></thead>`;
    const body = `<tbody>${lab.benches
        .map((b) => `<tr data-bench="${esc(b)}"><th scope="row">${esc(b)}</th>${lab.techniques.map((t) => `<td data-technique="${t.number}"></td>`).join('')}</tr>`)
        .join('')}</tbody>`;
    $('cycles').innerHTML = head + body;
    $('exits').innerHTML = head + body;
    render();
}

/** What a column's cells say when it has no figures (yet). */
function placeholder(t) {
    const r = lab.results[t.number];
    if (lab.running === t.number) return ['running…', 'running'];
    if (!r) return ['', 'pending'];
    return ['error', 'failed'];
}

function render() {
    const n = lab.iterations || 1;
    for (const [table, which] of [
        [$('cycles'), 'cycles'],
        [$('exits'), 'exits'],
    ]) {
        for (const t of lab.techniques) {
            const r = lab.results[t.number];
            const th = table.querySelector(`th[data-technique="${t.number}"]`);
            if (!th) continue;
            th.querySelector('.sub').textContent = lab.times[t.number] != null ? `${duration(lab.times[t.number])} in the browser` : '';
            lab.benches.forEach((b, i) => {
                const td = table.querySelector(`tr[data-bench="${CSS.escape(b)}"] td[data-technique="${t.number}"]`);
                const row = r?.ok ? r.rows[i] : null;
                if (!row) {
                    const [text, cls] = placeholder(t);
                    td.textContent = text;
                    td.className = cls;
                    td.title = r && !r.ok ? r.error : '';
                    delete td.dataset.filled;
                    delete td.dataset.value;
                    return;
                }
                td.className = 'filled';
                td.dataset.filled = '1';
                if (which === 'cycles') {
                    const v = perIteration(row.cycles, n);
                    td.dataset.value = String(v);
                    td.textContent = fmt(v);
                    td.title = explain(row, r, n);
                } else {
                    td.dataset.value = String(perIteration(row.exits, n));
                    td.innerHTML = exitsCell(row, n);
                    td.title = explain(row, r, n);
                }
            });
        }
    }
    $('caption').textContent = `N = ${lab.iterations || '…'} · exit cost ${fmt(Number($('exit-cost').value) || 0)} cycles`;
    $('progress').textContent = lab.techniques
        .map((t) => {
            const r = lab.results[t.number];
            const what = lab.running === t.number ? 'running…' : !r ? '…' : r.ok ? duration(lab.times[t.number]) : 'error';
            return `${t.number} ${t.name}: ${what}`;
        })
        .join(' · ');
    $('serial').textContent = lab.techniques
        .map((t) => {
            const r = lab.results[t.number];
            if (!r) return `${t.number} ${t.name}: —`;
            const report = r.ok ? r.serial.split('\n').filter((l) => !l.startsWith('nanobench: wrong: ')).join('\n').trim() : r.error;
            return `${t.number} ${t.name}: ${report}`;
        })
        .join('\n');
    renderWrong();
    drawChart();
}

/** Column 2's point: what the guest's probe of the sensitive instructions saw go wrong
 *  under each technique, and what the software monitor (columns 2–4) did meanwhile. */
function renderWrong() {
    const items = lab.techniques.map((t) => {
        const r = lab.results[t.number];
        if (!r?.ok) return `<li data-technique="${t.number}"><b>${t.number} ${esc(t.name)}</b>: —</li>`;
        const m = r.monitor;
        const work = m
            ? `<div class="muted">monitor: ${fmt(m.traps)} traps, ${fmt(m.reflected)} reflected, ${fmt(m.shadowFills)} shadow fills, ${fmt(m.tracedWrites)} traced writes` +
              (m.scans ? `, ${fmt(m.scans)} scans, ${fmt(m.breakpoints)} breakpoint hits, ${fmt(m.rescans)} rescans` : '') +
              `</div>`
            : '';
        const list = r.wrong.length ? `<ul class="wrong">${r.wrong.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ' <span class="ok">none</span>';
        return `<li data-technique="${t.number}" data-wrong="${r.wrong.length}"><b>${t.number} ${esc(t.name)}</b>: ${r.wrong.length ? `${r.wrong.length} wrong` : ''}${list}${work}</li>`;
    });
    $('wrong').innerHTML = items.join('');
}

/** The exits table's cell: instructions, then the exits by reason (and device-memory
 *  accesses, counted but not charged) per iteration. */
function exitsCell(row, n) {
    const parts = Object.entries(row.exitsByReason).map(([name, c]) => `${fmt(perIteration(c, n))} ${esc(name)}`);
    if (row.mmio > 0) parts.push(`${fmt(perIteration(row.mmio, n))} MMIO`);
    return `<span class="instr">${fmt(perIteration(row.instructions, n))} instr</span><span class="ex${parts.length ? '' : ' none'}">${parts.length ? parts.join(' + ') : 'no exit'}</span>`;
}

/** A cell's tooltip: how its cycles are made up. */
function explain(row, r, n) {
    const i = perIteration(row.instructions, n);
    const x = perIteration(row.exits, n);
    const byReason = Object.entries(row.exitsByReason).map(([name, c]) => `${fmt(perIteration(c, n))} ${name}`).join(', ');
    return (
        `${row.bench} under ${r.name}, per iteration:\n` +
        `${fmt(i)} guest instructions × 1 cycle + ${fmt(x)} charged exits × ${fmt(r.exitCost)} cycles = ${fmt(perIteration(row.cycles, n))} cycles` +
        (byReason ? `\nexits: ${byReason}` : '') +
        (row.mmio ? `\ndevice-memory accesses: ${fmt(perIteration(row.mmio, n))} (not charged)` : '')
    );
}

// ---- the chart ----------------------------------------------------------------------

/** x of technique `k` (0-based column) in benchmark `i`'s group. */
const slot = (i, k) => i * STRIDE + 1 + k;

/** The chart's data: one x per (benchmark, technique) slot, and per technique a series
 *  that has a value only in its own slots (null elsewhere, so uPlot draws no bar there). */
function chartData() {
    const xs = [];
    lab.benches.forEach((_, i) => lab.techniques.forEach((_, k) => xs.push(slot(i, k))));
    const n = lab.iterations || 1;
    const ys = lab.techniques.map((t, k) =>
        xs.map((x) => {
            const r = lab.results[t.number];
            const i = Math.floor(x / STRIDE);
            if (!r?.ok || x !== slot(i, k)) return null;
            const v = perIteration(r.rows[i].cycles, n);
            return v > 0 ? v : null; // a log scale has no place for 0
        }),
    );
    return [xs, ...ys];
}

function drawChart() {
    const el = $('chart');
    if (!lab.techniques.length) return;
    const data = chartData();
    const max = Math.max(10, ...data.slice(1).flat().filter((v) => v != null));
    el.dataset.bars = String(data.slice(1).flat().filter((v) => v != null).length);
    if (!chart) chart = makeChart(el, data);
    // The y range follows the data: whole decades from 1 to well above the tallest bar,
    // leaving room for its label.
    chart.batch(() => {
        chart.setData(data, false);
        chart.setScale('x', { min: 0, max: lab.benches.length * STRIDE - 1 });
        chart.setScale('y', { min: 1, max: 10 ** Math.ceil(Math.log10(max * 30)) });
    });
}

function makeChart(el, data) {
    const axis = { stroke: '#8a94a7', grid: { stroke: '#252c3a', width: 1 }, ticks: { stroke: '#252c3a', width: 1 } };
    const width = () => Math.max(320, el.clientWidth - 4);
    const bars = uPlot.paths.bars({ size: [0.86, 48], align: 0 });
    const u = new uPlot(
        {
            width: width(),
            height: 320,
            legend: { live: false },
            cursor: { show: false },
            scales: { x: { time: false, auto: false }, y: { distr: 3, log: 10, auto: false } },
            axes: [
                {
                    ...axis,
                    grid: { show: false },
                    // One label under the middle of each group: the benchmark's name.
                    splits: () => lab.benches.map((_, i) => slot(i, (lab.techniques.length - 1) / 2)),
                    values: () => lab.benches,
                    font: '13px system-ui, sans-serif',
                },
                {
                    ...axis,
                    size: 64,
                    label: 'cycles per iteration',
                    labelSize: 20,
                    // Decades only: 1, 10, 100, 1k… (uPlot's log splits add 2–9 of each).
                    splits: (u) => {
                        const out = [];
                        for (let t = 1; t <= u.scales.y.max; t *= 10) out.push(t);
                        return out;
                    },
                    values: (_u, ticks) => ticks.map((t) => (t >= 1e6 ? `${t / 1e6}M` : t >= 1000 ? `${t / 1000}k` : String(t))),
                },
            ],
            series: [
                {},
                ...lab.techniques.map((t) => ({
                    label: `${t.number} ${t.name}`,
                    stroke: COLOURS[t.number],
                    fill: `${COLOURS[t.number]}c0`,
                    width: 1,
                    paths: bars,
                    points: { show: false },
                })),
            ],
            hooks: {
                // Each bar's figure over it, written upwards (bars are narrower than
                // "12,620"), so the chart reads without the table.
                draw: [
                    (u) => {
                        const ctx = u.ctx;
                        const px = devicePixelRatio;
                        ctx.save();
                        ctx.font = `${Math.round(11 * px)}px system-ui, sans-serif`;
                        ctx.fillStyle = '#d7dde8';
                        ctx.textAlign = 'left';
                        ctx.textBaseline = 'middle';
                        for (let s = 1; s < u.series.length; s++) {
                            const ys = u.data[s];
                            for (let j = 0; j < ys.length; j++) {
                                if (ys[j] == null) continue;
                                const x = u.valToPos(u.data[0][j], 'x', true);
                                const y = u.valToPos(ys[j], 'y', true);
                                ctx.setTransform(1, 0, 0, 1, x, y - 4 * px);
                                ctx.rotate(-Math.PI / 2);
                                ctx.fillText(fmt(ys[j]), 0, 0);
                            }
                        }
                        ctx.restore();
                    },
                ],
            },
        },
        data,
        el,
    );
    new ResizeObserver(() => u.setSize({ width: width(), height: 320 })).observe(el);
    return u;
}
