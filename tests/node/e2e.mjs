#!/usr/bin/env node
// tests/node/e2e.mjs — end-to-end tests of the v386 page (www/) in Debian's Chromium,
// driven by playwright-core.
//
//   bash scripts/build-web.sh      # pkg/ and .cache/images/webdemo.img
//   node tests/node/e2e.mjs
//
// It serves the repository with scripts/serve.mjs on a free port and checks:
//  0. the default demo (/, www/demo.json): the two demo kernels and Debian's Linux as VMs
//     on the host's clock, and the sensitive kernel again trap-and-emulated: its panel's
//     badge says so and its screen shows the monitor's GDT (SGDT base FFC00000) where
//     the V386 one shows the guest's; the chart shows rates for three reasons or more, log
//     rows show disassembly, break on exit pauses on CPUID, the paused classic VM's
//     registers show the monitor's rows (the guest's own GDTR beside the real one) and run
//     to exit stops it at its next monitor trap (handled), Linux
//     reaches its shell and a command typed in its terminal runs, Save and Restore bring
//     it back                                                    → tests/out/e2e-demo.png
//  1. the single-machine page (machine.html: SeaBIOS booting the demo floppy) shows its banner on the VGA
//     screen (read through window.v386) and in the xterm.js serial console, the canvas is
//     drawn, keys typed on the focused canvas and bytes typed in the terminal both echo on
//     the screen and the serial line, the status bar shows MIPS, Pause stops the machine
//     and Start resumes it;                                     → tests/out/e2e-default.png
//  2. images given by URL parameters boot: memtest86+ as a kernel (?kernel=…&mem=64: no
//     VGA BIOS, so the text is drawn with the font taken from the VGA BIOS ROM; its screen
//     reports the 64 MB)                                        → tests/out/e2e-url.png
//     and the isolinux CD (?cdrom=…&mem=128&clock=wall): ISOLINUX on the screen and COM1;
//  3. a hard-disk image chosen with the file picker (a boot sector that draws stripes in
//     mode 13h) shows as 320×200 graphics                      → tests/out/e2e-graphics.png
//     and the same image dropped on the page replaces it;
//  4. errors reach the page's error panel: a missing image (HTTP 404) and a config the
//     emulator rejects (a Machine constructor exception in the worker), and a wasm panic
//     (Machine.panicForTest: console_error_panic_hook's message);
//  5. the VMs page with examples/small.json (deterministic): VMs under the VMM on V386 — SeaBIOS's demo floppy and the
//     demo kernels when built — each with its screen and serial line; the exits panel:
//     the counters table, the uPlot chart with non-zero rates for three reasons or more,
//     the share of work guest vs VMM, the virtualised exit log with disassembled rows and
//     its reason filter                                          → tests/out/e2e-vms.png
//     break on exit (CPUID) pauses on that reason with the registers and the pending
//     exit shown                             → tests/out/e2e-vms-break.png, e2e-vms-exits.png
//     and steps move EIP with the changed values highlighted, "run to exit" stops at the
//     next exit                                                   → tests/out/e2e-vms-step.png
//  6. the embeddings (www/examples/index.html): three <v386-machine> uses — a config file
//     with one panel, inline JSON with the exits panel, and createMachine() from script —
//     each boots and shows its guest's text                    → tests/out/e2e-examples.png
//     and the VMs page takes a config by URL parameter (?config=examples/clock.json).
//  7. the compare page (compare.html?iterations=200): the technique lab runs in a worker;
//     the table has six columns, every column the lab can run (labTechniques) fills its
//     eight rows with positive cycles per iteration, the others none; the chart has a bar
//     per filled cell                                           → tests/out/e2e-compare.png
// Prints one line per check; exits 1 when any fails.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { OUT, check, failureCount, log, openPage, startBrowser, startServer, waitFor } from './lib/harness.mjs';

const BANNER = 'v386 web demo';

const screenText = (page) => page.evaluate(() => window.v386.screenText());
const serialText = (page) => page.evaluate(() => window.v386.serialText());
const terminalText = (page) => page.evaluate(() => window.v386.terminalText());
const pageState = (page) => page.evaluate(() => ({ ...window.v386.state }));

/** Pixels of the screen canvas that are not black, and how many colours it uses. */
const canvasStats = (page) =>
    page.evaluate(() => {
        const c = document.getElementById('screen');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        const colours = new Set();
        for (let i = 0; i < d.length; i += 4) {
            if (d[i] | d[i + 1] | d[i + 2]) lit++;
            if (colours.size < 64) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        }
        return { width: c.width, height: c.height, lit, colours: colours.size };
    });

const errorPanel = (page) =>
    page.evaluate(() => ({ visible: !document.getElementById('error').hidden, text: document.getElementById('error').innerText }));

async function testDefault(context, base) {
    log('--- default machine: SeaBIOS + demo floppy');
    const t0 = Date.now();
    const { page, errors } = await openPage(context, `${base}machine.html`);
    check(await waitFor(async () => (await pageState(page)).booted, 15_000), 'the worker built the machine');

    const screen = await waitFor(async () => ((await screenText(page)).includes(BANNER) ? screenText(page) : ''), 60_000, 200);
    const bannerSeconds = (Date.now() - t0) / 1000;
    check(screen, `banner "${BANNER}" on the VGA text screen after ${bannerSeconds.toFixed(1)} s`, await screenText(page));
    check(/SeaBIOS \(version/.test(screen), 'SeaBIOS banner on the screen too');

    // The banner is in the guest's memory; the canvas shows it on the next animation frame.
    const stats = (await waitFor(async () => ((await canvasStats(page)).lit > 2000 ? canvasStats(page) : null), 5_000)) ?? (await canvasStats(page));
    check(stats.width === 720 && stats.height === 400, `canvas at native 80×25 size, 9×16 cells (${stats.width}×${stats.height})`);
    check(stats.lit > 2000 && stats.colours >= 2, `canvas drawn: ${stats.lit} lit pixels, ${stats.colours} colours`);
    check(!(await page.evaluate(() => window.v386.canvasBlank())), 'the renderer reports a non-blank screen');

    check(await waitFor(async () => (await serialText(page)).includes(BANNER), 10_000), 'banner on COM1 (serial text the page collected)');
    check(await waitFor(async () => (await terminalText(page)).includes(BANNER), 5_000), 'banner in the xterm.js buffer');

    // The keyboard: focus the canvas by clicking it, type, see the echo on both outputs.
    await page.click('#screen');
    const focus = await page.evaluate(() => ({
        focused: document.activeElement?.id === 'screen',
        chip: document.getElementById('focus-state').textContent,
    }));
    check(focus.focused && /captured/.test(focus.chip), `clicking the canvas captures the keyboard ("${focus.chip}")`);
    await page.keyboard.type('hello', { delay: 30 });
    check(await waitFor(async () => (await screenText(page)).includes('hello'), 10_000), 'keys typed on the canvas echo on the screen', await screenText(page));
    check(await waitFor(async () => (await serialText(page)).includes('hello'), 5_000), '... and on COM1');

    // The terminal: bytes typed there go to COM1, the demo echoes them on the screen.
    await page.click('#terminal');
    await page.keyboard.type('world', { delay: 30 });
    check(await waitFor(async () => (await screenText(page)).includes('world'), 10_000), 'bytes typed in the terminal reach the guest (echo on the screen)');
    check(await waitFor(async () => (await terminalText(page)).includes('world'), 5_000), '... and come back in the terminal');

    await page.waitForTimeout(600);
    const status = await page.evaluate(() => ({
        state: document.getElementById('st-state-text').textContent,
        mips: Number.parseFloat(document.getElementById('st-mips').textContent),
        instr: Number(document.getElementById('st-instr').textContent.replace(/,/g, '')),
    }));
    const state = await pageState(page);
    check(status.state.startsWith('Running') && state.running, `status bar: ${status.state}`);
    check(status.instr > 1_000_000, `status bar: ${status.instr.toLocaleString('en-US')} instructions`);
    check(status.mips > 0, `status bar: ${status.mips} MIPS (worker: ${state.mips.toFixed(1)} MIPS while executing, load ${Math.round(state.busy * 100)}%)`);

    // Pause stops the instruction count; Start resumes.
    await page.click('#btn-pause');
    check(await waitFor(async () => !(await pageState(page)).running, 3_000), 'Pause stops the machine');
    const before = (await pageState(page)).instructions;
    await page.waitForTimeout(400);
    const after = (await pageState(page)).instructions;
    check(before === after, `paused: the instruction count stays (${before})`);
    await page.click('#btn-step');
    check(await waitFor(async () => (await pageState(page)).instructions > after, 3_000), 'Step runs an instruction while paused');
    await page.click('#btn-start');
    check(await waitFor(async () => (await pageState(page)).running, 3_000), 'Start resumes it');

    check(!(await errorPanel(page)).visible, 'no error panel');
    check(errors.length === 0, 'no console errors or page exceptions', errors.join('\n'));
    await page.click('#screen');
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(OUT, 'e2e-default.png') });
    log(`screenshot tests/out/e2e-default.png`);
    await page.close();
    return { bannerSeconds, mips: state.mips };
}

async function testKernelUrl(context, base) {
    const query = '?kernel=/images/memtest86%2B.bin&mem=64';
    log(`--- a kernel from the URL: ${query}`);
    const t0 = Date.now();
    const { page, errors } = await openPage(context, `${base}machine.html${query}`);
    const screen = await waitFor(async () => ((await screenText(page)).includes('Memtest86+') ? screenText(page) : ''), 60_000, 200);
    check(screen, `memtest86+ on the screen after ${((Date.now() - t0) / 1000).toFixed(1)} s`, await screenText(page));
    check(/Memory\s*:\s*64MB/.test(screen), 'it sees the 64 MB asked for (mem=64)', screen);
    check(await waitFor(async () => (await serialText(page)).includes('Memtest86+'), 10_000), 'memtest86+ on COM1 too');
    const state = await pageState(page);
    check(state.media.kernel === 'memtest86+.bin' && state.memoryMb === 64, `machine: kernel ${state.media.kernel}, ${state.memoryMb} MB`);
    const font = await page.evaluate(() => window.v386.fontSource());
    check(font === 'vga-bios', `no VGA BIOS ran: text drawn with the font found in the VGA BIOS ROM (${font})`);
    const stats = (await waitFor(async () => ((await canvasStats(page)).lit > 100_000 ? canvasStats(page) : null), 5_000)) ?? (await canvasStats(page));
    check(stats.lit > 100_000 && stats.colours >= 4, `canvas drawn in colour: ${stats.lit} lit pixels, ${stats.colours} colours`);
    check(errors.length === 0, 'no console errors or page exceptions', errors.join('\n'));
    await page.screenshot({ path: path.join(OUT, 'e2e-url.png') });
    log('screenshot tests/out/e2e-url.png');
    await page.close();
}

async function testCdromUrl(context, base) {
    const query = '?cdrom=/images/linux.iso&mem=128&clock=wall';
    log(`--- a CD from the URL: ${query}`);
    const t0 = Date.now();
    const { page, errors } = await openPage(context, `${base}machine.html${query}`);
    const screen = await waitFor(async () => ((await screenText(page)).includes('ISOLINUX') ? screenText(page) : ''), 60_000, 200);
    check(screen, `ISOLINUX on the screen after ${((Date.now() - t0) / 1000).toFixed(1)} s (booted from the CD)`, await screenText(page));
    check(/Booting from DVD\/CD/.test(screen) && !screen.includes(BANNER), 'SeaBIOS booted the CD, not the demo floppy');
    check(await waitFor(async () => (await serialText(page)).includes('Loading /vmlinuz'), 20_000), 'ISOLINUX loads the kernel (COM1)');
    const state = await pageState(page);
    check(state.memoryMb === 128 && state.clock === 'wall', `built with mem=128 and the wall clock (${state.memoryMb} MB, ${state.clock})`);
    const machine = await page.evaluate(() => document.getElementById('st-machine').textContent);
    check(machine.includes('CD: linux.iso'), `status bar names the image: "${machine}"`);
    check(await page.evaluate(() => window.v386.fontSource()) === 'guest', 'text drawn with the guest\'s font (VGA plane 2)');
    check(errors.length === 0, 'no console errors or page exceptions', errors.join('\n'));
    await page.close();
}

/** A 1 MiB hard disk whose boot sector sets mode 13h and fills the screen with stripes:
 *  mov ax,13h; int 10h; push 0A000h; pop es; xor di,di;
 *  l: mov ax,di; mov al,ah; stosb; cmp di,64000; jb l; h: hlt; jmp h */
function stripesDisk() {
    const code = [0xb8, 0x13, 0x00, 0xcd, 0x10, 0x68, 0x00, 0xa0, 0x07, 0x31, 0xff, 0x89, 0xf8, 0x88, 0xe0, 0xaa,
        0x81, 0xff, 0x00, 0xfa, 0x72, 0xf5, 0xf4, 0xeb, 0xfd];
    const disk = Buffer.alloc(1 << 20);
    disk.set(code);
    disk[510] = 0x55;
    disk[511] = 0xaa;
    return disk;
}

async function testFilePickerAndDrop(context, base) {
    log('--- a disk image from the file picker, then by drag and drop');
    const { page, errors } = await openPage(context, `${base}machine.html?mem=16`);
    await waitFor(async () => (await pageState(page)).booted, 15_000);
    const disk = stripesDisk();
    const chooser = page.waitForEvent('filechooser');
    await page.click('button[data-pick=hda]');
    await (await chooser).setFiles({ name: 'stripes.img', mimeType: 'application/octet-stream', buffer: disk });
    const mode = await waitFor(async () => ((await pageState(page)).screen === '320×200 graphics' ? '320×200 graphics' : ''), 30_000, 200);
    check(mode, `the picked disk boots into mode 13h (${(await pageState(page)).screen})`);
    check((await pageState(page)).media.hda === 'stripes.img', 'status: hard disk stripes.img');
    const stats = (await waitFor(async () => ((await canvasStats(page)).colours >= 40 ? canvasStats(page) : null), 5_000)) ?? (await canvasStats(page));
    check(stats.width === 320 && stats.height === 200 && stats.colours >= 40, `graphics drawn: ${stats.width}×${stats.height}, ${stats.colours}+ colours`);
    const css = await page.evaluate(() => getComputedStyle(document.getElementById('screen')).width);
    check(Number.parseFloat(css) % 640 === 0, `shown at a whole multiple of 640×400 (css width ${css})`);
    await page.screenshot({ path: path.join(OUT, 'e2e-graphics.png') });
    log('screenshot tests/out/e2e-graphics.png');

    // Drop the same bytes under another name: the page guesses the drive from the size.
    const before = await pageState(page);
    await page.evaluate(
        ([sector, size]) => {
            const bytes = new Uint8Array(size);
            bytes.set(Uint8Array.from(atob(sector), (c) => c.charCodeAt(0)));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'dropped.img'));
            window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
        },
        [disk.subarray(0, 512).toString('base64'), disk.length],
    );
    const rebuilt = await waitFor(async () => {
        const st = await pageState(page);
        return st.boots > before.boots && st.media.hda === 'dropped.img';
    }, 10_000);
    check(rebuilt, 'a dropped 1 MiB image goes in as the hard disk of a new machine');
    const st = await waitFor(async () => {
        const s = await pageState(page);
        return s.screen === '320×200 graphics' && s.screenBoot === s.boots ? s : null;
    }, 20_000);
    check(st, `... and the new machine switches to mode 13h again (machine #${st?.boots})`);
    check(errors.length === 0, 'no console errors or page exceptions', errors.join('\n'));
    await page.close();
}

async function testErrors(context, base) {
    log('--- errors reach the error panel');
    let { page } = await openPage(context, `${base}machine.html?fda=/images/no-such-image.img`);
    let panel = await waitFor(async () => ((await errorPanel(page)).visible ? errorPanel(page) : null), 10_000);
    check(panel && /HTTP 404/.test(panel.text), 'a missing image: the panel shows the HTTP 404', panel?.text);
    await page.close();

    ({ page } = await openPage(context, `${base}machine.html?mem=0`));
    panel = await waitFor(async () => ((await errorPanel(page)).visible ? errorPanel(page) : null), 15_000);
    check(panel && /memoryMb/.test(panel.text), 'a config the emulator rejects: the worker\'s exception is on the panel', panel?.text);
    const state = await pageState(page);
    check(state.phase === 'error', `page state: ${state.phase}`);
    await page.close();

    // A wasm panic: console_error_panic_hook's message, captured by the worker, is on the panel.
    ({ page } = await openPage(context, `${base}machine.html`));
    await waitFor(async () => (await pageState(page)).phase === 'running' || null, 15_000);
    await page.evaluate(() => window.v386.send({ type: 'panicForTest' }));
    panel = await waitFor(async () => ((await errorPanel(page)).visible ? errorPanel(page) : null), 10_000);
    check(panel && /deliberate panic/.test(panel.text), 'a wasm panic: its message is on the panel', panel?.text);
    await page.close();
}

const fmtN = (n) => Math.round(n).toLocaleString('en-US');

async function testVms(context, base) {
    log('--- the VMs page: VMs under the VMM, exits as they happen');
    // SeaBIOS and the demo kernels, deterministic, without Linux: the small guests exit
    // fast (10^5 log rows in seconds).
    const { page, errors } = await openPage(context, `${base}?config=examples/small.json`);
    const vmScreen = (i) => page.evaluate((i) => document.querySelector(`.vm[data-vm="${i}"] .screen`)?.textContent ?? '', i);
    const screen = await waitFor(async () => ((await vmScreen(0)).includes(BANNER) ? vmScreen(0) : ''), 60_000, 200);
    check(screen, `the SeaBIOS VM shows "${BANNER}" on its own screen`, await vmScreen(0));
    // The serial bytes may come in a later update than the screen: wait for them, and
    // read the terminal's buffer (xterm.js renders off-screen rows lazily).
    const vmSerial = () => page.evaluate(() => window.v386vms.panels[0]?.serialText() ?? '');
    const serial = await waitFor(async () => ((await vmSerial()).includes(BANNER) ? vmSerial() : null), 10_000, 200);
    check(serial, 'and on its own serial line', await vmSerial());
    const counted = () =>
        page.evaluate(() => [...document.querySelectorAll('.exit-body tr')].filter((tr) => Number(tr.dataset.count) > 0).map((tr) => tr.dataset.reason));
    const reasons = await waitFor(async () => {
        const r = await counted();
        return r.includes('IO') && r.includes('HLT') ? r : null;
    }, 20_000);
    check(reasons, `the exits table counts reasons: ${reasons?.join(', ')}`);
    const vmCount = await page.evaluate(() => document.querySelectorAll('.vm').length);
    log(`${vmCount} VM panel(s)`);

    // The chart: exits per second by reason, stacked (uPlot); its element names the
    // reasons with a non-zero rate in the window.
    const nonzero = () => page.evaluate(() => (document.querySelector('.xp-chart')?.dataset.nonzero ?? '').split(',').filter(Boolean));
    const charted = await waitFor(async () => ((await nonzero()).length >= 3 ? nonzero() : null), 20_000, 250);
    check(charted, `the chart shows non-zero rates for ${charted?.length ?? 0} reasons: ${(charted ?? (await nonzero())).join(', ')}`);
    check(await page.evaluate(() => !!document.querySelector('.xp-chart canvas')), 'the chart is drawn by uPlot (a canvas)');
    const shares = await page.evaluate(() => [...document.querySelectorAll('.xp-share')].map((e) => e.textContent.trim().replace(/\s+/g, ' ')));
    check(shares.length === vmCount && shares.every((s) => /guest [\d.]+% · VMM [\d.]+%/.test(s)), `share of work per VM: ${shares.join(' | ')}`);

    // The exit log: a virtualised list (only the visible rows in the DOM), disassembled.
    const logInfo = () =>
        page.evaluate(() => {
            const rows = [...document.querySelectorAll('.xp-log-rows .xp-row:not([hidden])')];
            return {
                rows: rows.length,
                height: document.querySelector('.xp-log-spacer').offsetHeight,
                dis: rows.map((r) => r.querySelector('.dis').textContent),
                count: document.querySelector('.xp-log-count').textContent,
            };
        });
    const dis = await waitFor(async () => {
        const l = await logInfo();
        return l.dis.some((d) => /^(out|in|hlt|cpuid|rdmsr|wrmsr|vmcall|outs|ins)\b/.test(d)) ? l : null;
    }, 20_000, 250);
    const info = dis ?? (await logInfo());
    check(dis, `log rows show disassembly: ${[...new Set(info.dis.filter((d) => d && d !== '…'))].slice(0, 6).join(' | ')}`);
    check(info.rows > 10 && info.rows < 40 && info.height > info.rows * 18, `the log is virtualised: ${info.rows} rows in the DOM for ${info.height / 18} rows ${info.count}`);

    // Filters: only HLT in the log.
    await page.evaluate(() => document.querySelectorAll('input.rf').forEach((c) => c.dataset.reason !== 'x' && (c.checked = c.closest('tr').dataset.reason === 'HLT') & c.dispatchEvent(new Event('change', { bubbles: true }))));
    await page.waitForTimeout(300);
    const onlyHlt = await page.evaluate(() => [...document.querySelectorAll('.xp-log-rows .xp-row:not([hidden])')].map((r) => r.dataset.reason));
    check(onlyHlt.length > 0 && onlyHlt.every((r) => r === 'HLT'), `the reason filter leaves only HLT rows (${onlyHlt.length} shown)`);
    await page.evaluate(() => document.querySelectorAll('input.rf').forEach((c) => (c.checked = true) & c.dispatchEvent(new Event('change', { bubbles: true }))));

    // 10^5 rows: jumping around the list every frame stays smooth (a virtualised list).
    const kept = () => page.evaluate(() => document.querySelector('.xp-log-spacer').offsetHeight / 18);
    const many = await waitFor(async () => ((await kept()) >= 100_000 ? kept() : 0), 40_000, 500);
    const renders = () => page.evaluate(() => document.querySelector('.xp-log').dataset.render.split(' ').map(Number));
    const [n0, ms0] = await renders();
    const scroll = await page.evaluate(
        () =>
            new Promise((resolve) => {
                const vp = document.querySelector('.xp-log-viewport');
                const max = vp.scrollHeight - vp.clientHeight;
                let frames = 0;
                let worst = 0;
                let last = performance.now();
                const t0 = last;
                const frame = (now) => {
                    worst = Math.max(worst, now - last);
                    last = now;
                    frames++;
                    vp.scrollTop = (frames * 7919 * 18) % max;
                    if (now - t0 < 2000) requestAnimationFrame(frame);
                    else resolve({ fps: frames / ((now - t0) / 1000), worst, dom: document.querySelectorAll('.xp-log-rows .xp-row').length });
                };
                requestAnimationFrame(frame);
            }),
    );
    const [n1, ms1, worstRender] = await renders();
    const perRender = (ms1 - ms0) / Math.max(1, n1 - n0);
    // The render's own time is the list's cost (frame rates also depend on the host's load).
    const [updates, updateMs, updateWorst] = await page.evaluate(() => document.querySelector('.exits-panel').dataset.updates.split(' ').map(Number));
    log(`the exits panel took ${(updateMs / updates).toFixed(2)} ms an update (${updates} updates, worst ${updateWorst} ms)`);
    check(
        many >= 100_000 && perRender < 4,
        `scrolling ${fmtN(many)} log rows: ${perRender.toFixed(2)} ms a render (${n1 - n0} renders, worst ever ${worstRender} ms), ` +
            `${scroll.fps.toFixed(0)} fps, worst frame ${scroll.worst.toFixed(0)} ms, ${scroll.dom} rows in the DOM`,
    );
    await page.evaluate(() => (document.querySelector('.xp-log-viewport').scrollTop = 0));
    await page.screenshot({ path: path.join(OUT, 'e2e-vms.png'), fullPage: true });
    log('screenshot tests/out/e2e-vms.png');

    // Break on exit: CPUID (the sensitive demo runs it ten times a second; SeaBIOS too).
    const want = (await counted()).includes('CPUID') ? 'CPUID' : 'HLT';
    await page.check(`input.brk[data-reason="${want}"]`);
    const status = () => page.evaluate(() => document.querySelector('.xp-status').textContent);
    const paused = await waitFor(async () => ((await status()).startsWith('paused on') ? status() : ''), 20_000, 100);
    check(paused.startsWith(`paused on ${want} in `), `break on exit pauses on the chosen reason: "${paused}"`);
    const reg = (name) => page.evaluate((n) => document.querySelector(`.xp-regs .reg[data-name="${n}"] .v`)?.textContent ?? '', name);
    const exitReason = await waitFor(async () => ((await reg('reason')).startsWith(want) ? reg('reason') : ''), 5_000);
    check(exitReason, `the register view shows the paused VM's pending exit: ${exitReason}, ${await reg('state')}, "${await reg('instr')}"`);
    const eip0 = await reg('EIP');
    check(/^[0-9a-f]{8}$/.test(eip0) && (await reg('EAX')).length === 8, `registers filled: EIP ${eip0}, EAX ${await reg('EAX')}, CS ${await reg('CS')}`);
    await page.check(`input.brk[data-reason="${want}"]`).then(() => page.uncheck(`input.brk[data-reason="${want}"]`));
    await page.screenshot({ path: path.join(OUT, 'e2e-vms-break.png'), fullPage: true });
    log('screenshot tests/out/e2e-vms-break.png');
    // The whole exits panel, unscrolled, for a reader of the screenshots.
    await page.addStyleTag({ content: '.exits-panel { max-height: none !important; }' });
    await page.locator('.exits-panel').screenshot({ path: path.join(OUT, 'e2e-vms-exits.png') });
    log('screenshot tests/out/e2e-vms-exits.png (the exits panel, paused)');

    // Single step: the first handles the pending exit (EIP moves past the instruction).
    await page.click('.xp-step');
    const eip1 = await waitFor(async () => ((await reg('EIP')) !== eip0 ? reg('EIP') : ''), 5_000);
    check(eip1, `a step changes EIP: ${eip0} → ${eip1}`);
    const changed = await page.evaluate(() => [...document.querySelectorAll('.xp-regs .reg.changed')].map((e) => e.dataset.name));
    check(changed.includes('EIP'), `changed values are highlighted: ${changed.join(', ')}`);
    await page.click('.xp-step');
    const eip2 = await waitFor(async () => ((await reg('EIP')) !== eip1 ? reg('EIP') : ''), 5_000);
    check(eip2, `another step: ${eip1} → ${eip2}`);
    // Run to exit: the VM runs alone up to its next exit, which waits in the register view.
    await page.click('.xp-next');
    const next = await waitFor(async () => ((await status()).includes('(pending') && (await reg('state')).startsWith('pending') ? status() : ''), 10_000);
    check(next, `run to exit stops at the next exit: "${next}", instruction "${await reg('instr')}"`);
    await page.screenshot({ path: path.join(OUT, 'e2e-vms-step.png'), fullPage: true });

    // Continue: the VMs run again.
    await page.click('.xp-continue');
    const total = () => page.evaluate(() => Number(document.querySelector('.exit-body').closest('table').querySelector('.exit-body tr')?.dataset.count ?? 0) + Number(document.querySelector('.exit-total').textContent.replace(/,/g, '').split(' ')[0]));
    const t0 = await total();
    check(await waitFor(async () => (await total()) > t0 && (await status()) === 'running', 10_000), 'Continue resumes the VMs');

    // The demo kernels are optional: a 404 for one that was not built is not an error.
    const real = errors.filter((e) => !/Failed to load resource.*404/.test(e));
    check(real.length === 0, 'no page errors', real.join('\n'));
    await page.close();
}

const PROMPT = 'v386:/# ';

async function testDemo(context, base) {
    log('--- the default demo: VMs on the V386 extension and one trap-and-emulated (www/demo.json)');
    const t0 = Date.now();
    const { page, errors } = await openPage(context, base);
    const vmNames = () => page.evaluate(() => [...document.querySelectorAll('.vm .name')].map((e) => e.textContent));
    const names = await waitFor(async () => ((await vmNames()).length >= 3 ? vmNames() : null), 60_000, 250);
    check(names?.includes('linux'), `the demo's VMs: ${names?.join(', ')}`);
    const screen = (i) => page.evaluate((i) => document.querySelector(`.vm[data-vm="${i}"] .screen`)?.textContent ?? '', i);
    const booted = await waitFor(async () => ((await screen(0)) + (await screen(1))).includes('v386 VM demo: sensitive') ? true : null, 60_000, 250);
    check(booted, `the demo kernels boot in their VMs (${((Date.now() - t0) / 1000).toFixed(1)} s)`, (await screen(0)) + (await screen(1)));
    // The sensitive kernel twice: on V386 it reads its own GDT, trap-and-emulated on the
    // classic x86 the monitor's (tests/vmm_demo.rs checks the same natively).
    const own = names?.indexOf('sensitive') ?? -1;
    const classic = names?.indexOf('sensitive (classic)') ?? -1;
    const sgdt = async (i) => /SGDT +base ([0-9A-F]{8})/.exec(await screen(i))?.[1] ?? '';
    const bases = await waitFor(async () => ((await sgdt(own)) && (await sgdt(classic)) ? [await sgdt(own), await sgdt(classic)] : null), 60_000, 250);
    check(
        bases?.[0] === '00101078' && bases?.[1] === 'FFC00000' && (await screen(classic)).includes('SGDT    base FFC00000'),
        `SGDT on V386: ${bases?.[0]}; trap-and-emulated ("sensitive (classic)"): ${bases?.[1]}, the monitor's`,
        `${await screen(own)}\n----\n${await screen(classic)}`,
    );
    const badges = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('.vm')].map((el) => [el.querySelector('.name').textContent, el.querySelector('.technique').textContent])));
    check(
        badges['sensitive (classic)'] === 'Trap-and-emulate' && badges.sensitive === 'V386',
        `technique badges: ${Object.entries(badges).map(([n, t]) => `${n}: ${t}`).join(', ')}`,
    );
    const rates = await waitFor(async () => {
        const r = await page.evaluate(() => document.querySelector('.xp-chart')?.dataset.nonzero ?? '');
        return r.split(',').filter(Boolean).length >= 3 ? r : null;
    }, 30_000, 500);
    check(rates, `the chart shows non-zero rates for 3+ reasons: ${rates}`);
    const dis = await waitFor(async () => {
        const d = await page.evaluate(() => [...document.querySelectorAll('.xp-log-rows .xp-row:not([hidden]) .dis')].map((e) => e.textContent));
        return d.some((t) => /^(out|in|hlt|cpuid|vcall)\b/.test(t)) ? d : null;
    }, 20_000, 250);
    check(dis, `log rows show disassembly: ${[...new Set(dis ?? [])].filter(Boolean).slice(0, 5).join(' | ')}`);
    await page.check('input.brk[data-reason="CPUID"]');
    const status = () => page.evaluate(() => document.querySelector('.xp-status').textContent);
    const paused = await waitFor(async () => ((await status()).startsWith('paused on') ? status() : ''), 20_000, 100);
    check(paused.startsWith('paused on CPUID in '), `break on exit pauses on the chosen reason: "${paused}"`);
    await page.uncheck('input.brk[data-reason="CPUID"]');
    // The classic VM's registers while paused: the processor's GDTR is the monitor's, the
    // "monitor" group has the guest's own; a V386 VM has no such group.
    await page.selectOption('.xp-vm', String(classic));
    const reg = (name) => page.evaluate((n) => document.querySelector(`.xp-regs .reg[data-name="${n}"] .v`)?.textContent ?? '', name);
    const vgdtr = await waitFor(async () => ((await reg('vGDTR')).startsWith('base ') ? reg('vGDTR') : ''), 5_000);
    const monitorRows = await page.evaluate(() => document.querySelectorAll('.xp-regs-group[data-group="monitor"] .reg').length);
    check(
        vgdtr.startsWith('base 00101078') && (await reg('GDTR')).startsWith('base ffc00000') && (await reg('CPL')) === '1',
        `the classic VM's registers: GDTR ${await reg('GDTR')}, the guest's vGDTR ${vgdtr}, CPL ${await reg('CPL')}; ${monitorRows} monitor rows (${await reg('technique')}; traps ${await reg('traps')})`,
    );
    // Run to exit on the classic VM: it stops at its next trap, which the monitor handled.
    await page.click('.xp-next');
    const trap = await waitFor(async () => ((await status()).includes('(a monitor trap, handled)') ? status() : ''), 10_000);
    check(trap, `run to exit on the classic VM stops at its next monitor trap: "${trap}"`);
    await page.selectOption('.xp-vm', String(own));
    const noMonitor = await waitFor(async () => (await page.evaluate(() => !document.querySelector('.xp-regs-group[data-group="monitor"]') && !!document.querySelector('.xp-regs .reg[data-name="EIP"]')) ? true : null), 5_000);
    check(noMonitor, 'a V386 VM has no monitor group in its registers');
    await page.click('.xp-continue');
    const linux = names?.indexOf('linux') ?? -1;
    const serial = () => page.evaluate((i) => window.v386vms.panels[i]?.serialText() ?? '', linux);
    const shell = await waitFor(async () => ((await serial()).includes(PROMPT) ? true : null), 300_000, 1000);
    const shellSecs = (Date.now() - t0) / 1000;
    check(shell, `Linux reaches its shell in its VM after ${shellSecs.toFixed(1)} s`, (await serial()).slice(-600));
    if (shell) {
        await page.click(`.vm[data-vm="${linux}"] .serial-term`);
        await page.keyboard.type('echo v386-$((6*7))\n', { delay: 20 });
        const answer = await waitFor(async () => ((await serial()).includes('v386-42') ? true : null), 30_000, 250);
        check(answer, 'a command typed in its terminal runs (echo v386-$((6*7)) → v386-42)', (await serial()).slice(-300));
        // Save the whole machine, restore it, run on: Linux still answers.
        const saved = await page.evaluate(async () => {
            const b = await window.v386vms.save();
            window.savedSnapshot = b;
            return { size: b.length, magic: String.fromCharCode(...b.slice(0, 8)) };
        });
        check(saved.magic === 'V386SNAP' && saved.size > 1e6, `Save gives a snapshot file (${(saved.size / 2 ** 20).toFixed(1)} MiB, ${saved.magic})`);
        await page.evaluate(() => {
            window.v386vms.restore(window.savedSnapshot);
            window.v386vms.start();
        });
        await page.click(`.vm[data-vm="${linux}"] .serial-term`);
        await page.keyboard.type('echo restored-$((7*6))\n', { delay: 20 });
        const again = await waitFor(async () => ((await serial()).includes('restored-42') ? true : null), 30_000, 250);
        check(again, 'Restore puts it back and it runs on: Linux answers a new command', (await serial()).slice(-300));
        const panel = await page.evaluate(() => document.getElementById('error').hidden ? '' : document.getElementById('error').textContent);
        check(panel === '', 'no error panel after the restore', panel);
    }
    await page.screenshot({ path: path.join(OUT, 'e2e-demo.png'), fullPage: true });
    log('screenshot tests/out/e2e-demo.png');
    check(errors.length === 0, 'no page errors', errors.join('\n'));
    await page.close();
    return { shellSecs };
}

async function testExamples(context, base) {
    log('--- embedding: <v386-machine> three ways (examples/index.html)');
    const { page, errors } = await openPage(context, `${base}examples/`);
    const embedText = (id) =>
        page.evaluate(
            (id) => [...document.querySelectorAll(`#${id} .vm .screen, #${id} .vm .serial-term .xterm-rows`)].map((e) => e.textContent).join('\n'),
            id,
        );
    for (const [id, text, what] of [
        ['embed-file', 'v386 VM demo: clock', 'a config file, screen panel only'],
        ['embed-inline', 'v386 VM demo: sensitive instructions', 'inline JSON, two VMs'],
        ['embed-script', BANNER, 'createMachine() from script'],
    ]) {
        const got = await waitFor(async () => ((await embedText(id)).includes(text) ? true : null), 60_000, 250);
        check(got, `${what}: "${text}" on its VM's screen`, await embedText(id));
    }
    const shape = await page.evaluate(() => ({
        fileSerialHidden: document.querySelector('#embed-file .vm .serial-term')?.hidden,
        fileExitsHidden: document.querySelector('#embed-file .exits')?.hidden,
        inlineVms: document.querySelectorAll('#embed-inline .vm').length,
        inlineExitRows: document.querySelectorAll('#embed-inline .exit-body tr').length,
    }));
    check(shape.fileSerialHidden && shape.fileExitsHidden, 'the panels attribute/config hides the panels not asked for', JSON.stringify(shape));
    check(shape.inlineVms === 2 && shape.inlineExitRows > 0, 'the inline embedding shows 2 VMs and its exits panel', JSON.stringify(shape));
    await page.screenshot({ path: path.join(OUT, 'e2e-examples.png'), fullPage: true });
    log('screenshot tests/out/e2e-examples.png');
    check(errors.length === 0, 'no page errors', errors.join('\n'));
    await page.close();

    const { page: p2, errors: e2 } = await openPage(context, `${base}?config=examples/clock.json`);
    const clock = await waitFor(
        async () => ((await p2.evaluate(() => document.querySelector('.vm .screen')?.textContent ?? '')).includes('v386 VM demo: clock') ? true : null),
        60_000,
        250,
    );
    const n = await p2.evaluate(() => document.querySelectorAll('.vm').length);
    check(clock && n === 1, `the VMs page takes ?config=examples/clock.json (${n} VM)`);
    check(e2.length === 0, 'no page errors', e2.join('\n'));
    await p2.close();
}

/** The compare page: the technique lab in a worker, Adams & Agesen's table filled column
 *  by column. All six columns must fill all eight rows (seven nanobenchmarks and forkwait) with positive figures, the chart
 *  draw a bar per cell, and the wrong-results list show column 2's and no other. */
async function testCompare(context, base) {
    log('--- the technique lab in the browser (compare.html?iterations=200)');
    const t0 = Date.now();
    const { page, errors } = await openPage(context, `${base}compare.html?iterations=200`);
    const state = () => page.evaluate(() => document.body.dataset.lab ?? '');
    const end = await waitFor(async () => (['done', 'error'].includes(await state()) ? state() : null), 300_000, 250);
    check(end === 'done', `the lab ran to its end in the browser (${((Date.now() - t0) / 1000).toFixed(1)} s)`, await page.evaluate(() => document.body.innerText.slice(0, 2000)));
    const got = await page.evaluate(() => {
        const lab = window.v386lab;
        const heads = [...document.querySelectorAll('#cycles thead th[data-technique]')].map((th) => Number(th.dataset.technique));
        const columns = heads.map((n) => {
            const cells = [...document.querySelectorAll(`#cycles tbody td[data-technique="${n}"]`)];
            return {
                number: n,
                name: lab.techniques.find((t) => t.number === n)?.name,
                cells: cells.length,
                filled: cells.filter((c) => c.dataset.filled === '1' && Number(c.dataset.value) > 0).length,
                values: cells.map((c) => c.dataset.value ?? c.textContent),
                ms: lab.times[n],
                error: lab.results[n] && !lab.results[n].ok ? lab.results[n].error : '',
            };
        });
        return {
            columns,
            rows: document.querySelectorAll('#cycles tbody tr').length,
            bars: Number(document.getElementById('chart').dataset.bars),
            iterations: lab.iterations,
            wrong: [...document.querySelectorAll('#wrong > li[data-technique]')].map((li) => [Number(li.dataset.technique), Number(li.dataset.wrong ?? -1)]),
        };
    });
    check(got.iterations === 200, `the page ran N = ${got.iterations} iterations (?iterations=200)`);
    check(got.columns.length === 6 && got.rows === 8, `the table has six columns and eight rows (${got.columns.length} × ${got.rows})`);
    const filled = got.columns.filter((c) => c.filled === 8);
    for (const c of got.columns) {
        check(c.filled === 8, `column ${c.number} ${c.name}: ${c.filled}/8 cells filled in ${((c.ms ?? 0) / 1000).toFixed(2)} s: ${c.values.join(' ')}`, c.error);
    }
    check(filled.length === 6, `all six columns filled (${filled.map((c) => c.number).join(', ')})`);
    check(got.bars === 6 * 8, `the chart draws a bar per cell (${got.bars})`);
    const wrong = Object.fromEntries(got.wrong);
    check(
        wrong[2] > 0 && [1, 3, 4, 5, 6].every((n) => wrong[n] === 0),
        `wrong results: column 2 lists ${wrong[2]}, the others none (${JSON.stringify(wrong)})`,
    );
    await page.screenshot({ path: path.join(OUT, 'e2e-compare.png'), fullPage: true });
    log('screenshot tests/out/e2e-compare.png');
    check(errors.length === 0, 'no page errors', errors.join('\n'));
    await page.close();
    return { columnsFilled: filled.length, wrongInColumn2: wrong[2] };
}

mkdirSync(OUT, { recursive: true });
const server = await startServer();
log(`server ${server.url}`);
const browser = await startBrowser();
let figures = {};
try {
    // `--only=vms,examples` runs some of the tests (names: default, kernel, cdrom, drop,
    // errors, vms, examples, demo, compare): for quick runs while working on one page.
    const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
    const want = (name) => !only || only.includes(name);
    if (want('demo')) await testDemo(browser.context, server.url);
    if (want('default')) figures = await testDefault(browser.context, server.url);
    if (want('kernel')) await testKernelUrl(browser.context, server.url);
    if (want('cdrom')) await testCdromUrl(browser.context, server.url);
    if (want('drop')) await testFilePickerAndDrop(browser.context, server.url);
    if (want('errors')) await testErrors(browser.context, server.url);
    if (want('vms')) await testVms(browser.context, server.url);
    if (want('examples')) await testExamples(browser.context, server.url);
    if (want('compare')) figures.compare = await testCompare(browser.context, server.url);
} catch (err) {
    check(false, 'the test ran to its end', err.stack);
} finally {
    await browser.stop();
    server.stop();
}
const failed = failureCount();
// The figures of the tests that ran (a run with --only= may have none).
const said = [];
if (figures.bannerSeconds != null) said.push(`banner after ${figures.bannerSeconds.toFixed(1)} s, ${figures.mips?.toFixed(1)} MIPS while executing`);
if (figures.compare) said.push(`lab: ${figures.compare.columnsFilled} of 6 columns filled, ${figures.compare.wrongInColumn2} wrong results in column 2`);
log(failed ? `${failed} check(s) FAILED` : `all checks passed${said.length ? ` (${said.join('; ')})` : ''}`);
process.exit(failed ? 1 : 0);
