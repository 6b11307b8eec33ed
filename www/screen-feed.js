// screen-feed.js — turns a wasm `Screen` (src/web/screen.rs: a machine's or a VM's VGA as
// flat arrays in wasm memory) into the messages a page draws with vga.js: only the rows
// that changed, the palette and font only when they changed. The workers (worker.js for
// one machine, vmm-worker.js for VMs) keep one feed per display.
//
//   const feed = new ScreenFeed(wasmMemory);
//   if (machine.refreshScreen(screen) || force) { const out = feed.take(screen, force); post(out.msg, out.transfer); }
//
// Messages (worker → page):
//   {type:'blank'}                                   no video output
//   {type:'pixels', width, height, data}             graphics: RGBA bytes (transferred)
//   {type:'text', cols, rows, charHeight, full, rowList, cells, cursor:{col,row,start,end},
//    blink, palette?, font?}                         text: the changed rows' cells (Uint16Array,
//                                                    rowList.length × cols); palette (16 ×
//                                                    0xRRGGBB) and font (512 × 32 bytes) only
//                                                    when they changed

function sameBytes(a, b) {
    if (!a || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
}

export class ScreenFeed {
    /** @param {() => WebAssembly.Memory} memory the module's memory (wasmMemory) */
    constructor(memory) {
        this.memory = memory;
        this.reset();
    }

    /** Forget what the page has (a new machine, or a new page). */
    reset() {
        this.shown = { mode: -1, cols: 0, rows: 0, palette: null, font: null };
    }

    /** A typed-array view on wasm memory, made fresh: memory may have grown since. */
    view(Type, ptr, len) {
        return new Type(this.memory().buffer, ptr, len);
    }

    /** The message for `screen` (refreshed just before), or null when there is nothing new. */
    take(screen, force) {
        const shown = this.shown;
        const mode = screen.screenMode();
        if (mode === 0) {
            const was = shown.mode;
            shown.mode = 0;
            return was !== 0 || force ? { msg: { type: 'blank' }, transfer: [] } : null;
        }
        if (mode === 2) {
            const width = screen.pixelWidth();
            const height = screen.pixelHeight();
            const data = new Uint8ClampedArray(this.view(Uint8Array, screen.pixelsPtr(), width * height * 4));
            shown.mode = 2;
            return { msg: { type: 'pixels', width, height, data }, transfer: [data.buffer] };
        }
        const cols = screen.textCols();
        const rows = screen.textRows();
        const full = force || shown.mode !== 1 || shown.cols !== cols || shown.rows !== rows;
        const dirty = this.view(Uint8Array, screen.dirtyPtr(), rows);
        const cellsView = this.view(Uint16Array, screen.textPtr(), rows * cols);
        const rowList = [];
        for (let r = 0; r < rows; r++) if (full || dirty[r]) rowList.push(r);
        const cells = new Uint16Array(rowList.length * cols);
        rowList.forEach((r, i) => cells.set(cellsView.subarray(r * cols, (r + 1) * cols), i * cols));
        screen.clearDirty();
        const shape = screen.cursorShape();
        const msg = {
            type: 'text',
            cols,
            rows,
            full,
            rowList,
            cells,
            charHeight: screen.charHeight(),
            blink: screen.blink(),
            cursor: { col: screen.cursorCol(), row: screen.cursorRow(), start: shape >> 8, end: shape & 0xff },
        };
        const transfer = [cells.buffer];
        const palette = this.view(Uint32Array, screen.palettePtr(), 16);
        if (full || !sameBytes(shown.palette, palette)) {
            shown.palette = palette.slice();
            msg.palette = palette.slice();
        }
        const font = this.view(Uint8Array, screen.fontPtr(), screen.fontLen());
        if (full || !sameBytes(shown.font, font)) {
            shown.font = font.slice();
            msg.font = font.slice();
            transfer.push(msg.font.buffer);
        }
        Object.assign(shown, { mode, cols, rows });
        return { msg, transfer };
    }
}
