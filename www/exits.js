// exits.js — the exits panel of a VMM view: counts and rates by reason and VM, and the
// exit log. It renders into the element it is given and learns everything from the
// worker's updates (vmm-worker.js); `post` sends requests back to the worker.
//
//   const panel = new ExitsPanel(root, { post });
//   panel.update(msg);   // each {type:'update'} message from the worker
//   panel.message(msg);  // any other worker message, for the panel to pick up if it wants

const EXTRA = ['retired', 'turns', 'preemptions', 'device memory'];
const hex = (n, w) => n.toString(16).padStart(w, '0');

export class ExitsPanel {
    constructor(root, { post } = {}) {
        this.root = root;
        this.post = post ?? (() => {});
        this.history = []; // {t, counts: [per VM: counters]} for rates over the last second
        this.reasonNames = new Map(); // reason number → name, learned from the log
        this.logRows = [];
        root.classList.add('exits-panel');
        root.innerHTML = `
<h2>VM exits <span class="exit-total muted"></span></h2>
<table class="exit-table">
  <thead><tr class="exit-head"><th>reason</th></tr></thead>
  <tbody class="exit-body"></tbody>
</table>
<h2>Exit log <span class="muted">(newest first)</span></h2>
<table class="exit-log">
  <thead><tr><th>time</th><th>VM</th><th>reason</th><th>qualification</th><th>guest EIP</th><th>bytes</th></tr></thead>
  <tbody class="exit-log-body"></tbody>
</table>`;
        this.$ = (cls) => root.querySelector(`.${cls}`);
    }

    update(msg) {
        this.showLog(msg);
        this.showCounters(msg);
    }

    message(_msg) {}

    showCounters(msg) {
        const history = this.history;
        history.push({ t: msg.t, counts: msg.vms.map((v) => v.counters) });
        while (history.length > 2 && msg.t - history[0].t > 1000) history.shift();
        const old = history[0];
        const dt = (msg.t - old.t) / 1000;
        const head = this.$('exit-head');
        if (head.children.length !== 1 + 2 * msg.vms.length) {
            head.innerHTML = '<th>reason</th>';
            for (const v of msg.vms) head.insertAdjacentHTML('beforeend', `<th>${v.name}</th><th>/s</th>`);
        }
        const rows = [];
        for (let r = 0; r < 65; r++) {
            if (!msg.vms.some((v) => v.counters[r] > 0)) continue;
            rows.push([this.reasonNames.get(r) ?? `reason ${r}`, r]);
        }
        for (let k = 0; k < EXTRA.length; k++) rows.push([EXTRA[k], 65 + k]);
        this.$('exit-body').innerHTML = rows
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
        this.$('exit-total').textContent = `${exits} in all, ${Math.round(msg.instructions / 1e6)} M guest instructions`;
    }

    showLog(msg) {
        const logRows = this.logRows;
        for (const r of msg.log) {
            this.reasonNames.set(r.reason, r.name);
            logRows.unshift(r);
        }
        logRows.length = Math.min(logRows.length, 50);
        const vmName = (id) => msg.vms[id - 1]?.name ?? `vm${id}`;
        this.$('exit-log-body').innerHTML = logRows
            .map(
                (r) =>
                    `<tr><td>${r.time}</td><td>${vmName(r.vm)}</td><td>${r.name}</td><td>${r.qual}</td>` +
                    `<td>${hex(r.eip, 8)}</td><td>${r.bytes.map((b) => hex(b, 2)).join(' ')}</td></tr>`,
            )
            .join('');
    }
}
