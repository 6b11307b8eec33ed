// vga.js — draws the emulated VGA on a canvas: text modes cell by cell with the guest's
// own font (VGA plane 2), graphics modes as RGBA pixels.
//
// Text is drawn the way a VGA monitor shows it: 9-dot character cells (the line-drawing
// characters 0xC0-0xDF repeat their 8th column in the 9th), `charHeight` scan lines per row,
// attribute bit 7 blinking (or a bright background when blink is off), and the cursor as the
// scan lines between cursor start and end. The canvas holds the native resolution (720×400
// for 80×25); the page scales it by whole numbers with `image-rendering: pixelated`.

const CELL_W = 9;
const GLYPH_BYTES = 32; // one glyph in the font view (and in VGA plane 2)
const TEXT_BLINK_MS = 533; // one on/off cycle ≈ 1.9 Hz, as the VGA's 32-frame blink
const CURSOR_BLINK_MS = 267; // the cursor blinks twice as fast (16 frames)

/** The 256 glyphs of the IBM VGA 8×16 font in a VGA BIOS ROM, laid out 32 bytes per glyph;
 *  null when the ROM has no such font. Found by glyph 'A' (0x41), whose bitmap is known. */
export function fontFromVgaBios(rom) {
    const A = [0x00, 0x00, 0x10, 0x38, 0x6c, 0xc6, 0xc6, 0xfe, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00, 0x00, 0x00];
    const bytes = rom instanceof Uint8Array ? rom : new Uint8Array(rom);
    for (let i = 0x41 * 16; i + A.length <= bytes.length; i++) {
        let match = true;
        for (let j = 0; j < A.length && match; j++) match = bytes[i + j] === A[j];
        if (!match) continue;
        const start = i - 0x41 * 16;
        if (start + 256 * 16 > bytes.length) return null;
        const font = new Uint8Array(256 * GLYPH_BYTES);
        for (let c = 0; c < 256; c++) font.set(bytes.subarray(start + c * 16, start + c * 16 + 16), c * GLYPH_BYTES);
        return font;
    }
    return null;
}

/** 0x00RRGGBB → a little-endian RGBA pixel for a Uint32Array over ImageData. */
const rgba = (rgb) => (0xff000000 | ((rgb & 0xff) << 16) | (rgb & 0xff00) | ((rgb >> 16) & 0xff)) >>> 0;

/** The default EGA/VGA text palette, until the guest's arrives. */
const DEFAULT_PALETTE = [
    0x000000, 0x0000aa, 0x00aa00, 0x00aaaa, 0xaa0000, 0xaa00aa, 0xaa5500, 0xaaaaaa,
    0x555555, 0x5555ff, 0x55ff55, 0x55ffff, 0xff5555, 0xff55ff, 0xffff55, 0xffffff,
];

export class VgaScreen {
    constructor(canvas) {
        this.canvas = canvas;
        this.ctx = canvas.getContext('2d', { alpha: false });
        this.mode = 'blank'; // 'blank' | 'text' | 'graphics'
        this.cols = 80;
        this.rows = 25;
        this.charHeight = 16;
        this.cells = new Uint16Array(this.cols * this.rows);
        this.colors = Uint32Array.from(DEFAULT_PALETTE, rgba);
        this.font = null; // the guest's font view (512 × 32 bytes), or null
        this.fallbackFont = null; // from the VGA BIOS ROM
        this.guestFontEmpty = true;
        this.blinkEnabled = true;
        this.cursor = { col: -1, row: -1, start: 14, end: 15 };
        this.dirty = new Uint8Array(this.rows);
        this.allDirty = true;
        this.image = null;
        this.pixels32 = null;
        this.textPhase = true;
        this.cursorPhase = true;
        this.drawnCursorRow = -1;
        this.onresize = null; // called with (width, height, aspectX, aspectY) when the size changes
        this.resize(this.cols * CELL_W, this.rows * this.charHeight);
    }

    setFallbackFont(font) {
        this.fallbackFont = font;
        this.allDirty = true;
    }

    /** Native size and the pixel aspect to show it with (40-column text and 320-wide modes
     *  are doubled horizontally, 200-line modes vertically). */
    get aspect() {
        const w = this.canvas.width;
        const h = this.canvas.height;
        return { x: w <= 400 ? 2 : 1, y: h <= 240 ? 2 : 1 };
    }

    resize(width, height) {
        if (this.canvas.width === width && this.canvas.height === height && this.image) return;
        this.canvas.width = width;
        this.canvas.height = height;
        this.image = this.ctx.createImageData(width, height);
        this.pixels32 = new Uint32Array(this.image.data.buffer);
        this.allDirty = true;
        const a = this.aspect;
        this.onresize?.(width, height, a.x, a.y);
    }

    // ---- messages from the worker -------------------------------------------------------

    blank() {
        this.mode = 'blank';
        this.pixels32.fill(0xff000000);
        this.ctx.putImageData(this.image, 0, 0);
    }

    text(msg) {
        const sizeChanged = msg.cols !== this.cols || msg.rows !== this.rows || msg.charHeight !== this.charHeight;
        if (sizeChanged || this.mode !== 'text') {
            this.cols = msg.cols;
            this.rows = msg.rows;
            this.charHeight = msg.charHeight || 16;
            this.cells = new Uint16Array(this.cols * this.rows);
            this.dirty = new Uint8Array(this.rows);
            this.mode = 'text';
            this.resize(this.cols * CELL_W, this.rows * this.charHeight);
            this.allDirty = true;
        }
        msg.rowList.forEach((r, i) => {
            this.cells.set(msg.cells.subarray(i * this.cols, (i + 1) * this.cols), r * this.cols);
            this.dirty[r] = 1;
        });
        if (msg.palette) {
            this.colors = Uint32Array.from(msg.palette, rgba);
            this.allDirty = true;
        }
        if (msg.font) {
            this.font = msg.font;
            this.guestFontEmpty = !msg.font.subarray(0, 256 * GLYPH_BYTES).some((b) => b !== 0);
            this.allDirty = true;
        }
        if (msg.blink !== this.blinkEnabled) {
            this.blinkEnabled = msg.blink;
            this.allDirty = true;
        }
        const c = msg.cursor;
        const old = this.cursor;
        if (c.col !== old.col || c.row !== old.row || c.start !== old.start || c.end !== old.end) {
            this.markRow(old.row);
            this.markRow(c.row);
            this.cursor = c;
        }
    }

    pixels(msg) {
        this.mode = 'graphics';
        this.resize(msg.width, msg.height);
        this.image.data.set(msg.data);
        this.ctx.putImageData(this.image, 0, 0);
    }

    // ---- drawing ----------------------------------------------------------------------------

    markRow(r) {
        if (r >= 0 && r < this.rows) this.dirty[r] = 1;
    }

    /** Called every animation frame: redraw what changed and what blinks. */
    draw(now) {
        if (this.mode !== 'text') return;
        const textPhase = Math.floor(now / (TEXT_BLINK_MS / 2)) % 2 === 0;
        const cursorPhase = Math.floor(now / (CURSOR_BLINK_MS / 2)) % 2 === 0;
        if (textPhase !== this.textPhase) {
            this.textPhase = textPhase;
            if (this.blinkEnabled) this.markBlinkingRows();
        }
        if (cursorPhase !== this.cursorPhase) {
            this.cursorPhase = cursorPhase;
            this.markRow(this.cursor.row);
        }
        let top = this.rows;
        let bottom = -1;
        for (let r = 0; r < this.rows; r++) {
            if (!this.allDirty && !this.dirty[r]) continue;
            this.drawRow(r);
            this.dirty[r] = 0;
            top = Math.min(top, r);
            bottom = r;
        }
        this.allDirty = false;
        if (bottom >= 0) {
            const h = this.charHeight;
            this.ctx.putImageData(this.image, 0, 0, 0, top * h, this.canvas.width, (bottom - top + 1) * h);
        }
    }

    markBlinkingRows() {
        for (let r = 0; r < this.rows; r++) {
            for (let c = 0; c < this.cols; c++) {
                if (this.cells[r * this.cols + c] & 0x8000) {
                    this.dirty[r] = 1;
                    break;
                }
            }
        }
    }

    drawRow(r) {
        const { cols, charHeight: h, colors, pixels32: px } = this;
        const stride = this.canvas.width;
        const useGuest = this.font && !this.guestFontEmpty;
        const font = useGuest ? this.font : this.fallbackFont;
        // The fallback font is 8×16: an 8-line mode takes every other scan line.
        const lineStep = !useGuest && h <= 8 ? 2 : 1;
        const cur = this.cursor;
        const cursorHere = cur.row === r && cur.col >= 0 && cur.col < cols && this.cursorPhase && !(cur.start & 0x20);
        for (let c = 0; c < cols; c++) {
            const cell = this.cells[r * cols + c];
            const ch = cell & 0xff;
            const attr = cell >> 8;
            let fg = colors[attr & 15];
            const bg = colors[this.blinkEnabled ? (attr >> 4) & 7 : attr >> 4];
            if (this.blinkEnabled && attr & 0x80 && !this.textPhase) fg = bg;
            const lineGraphics = ch >= 0xc0 && ch <= 0xdf;
            const cursorTop = cursorHere && c === cur.col ? cur.start & 0x1f : 99;
            const cursorBottom = Math.min(cur.end & 0x1f, h - 1);
            let o = r * h * stride + c * CELL_W;
            for (let y = 0; y < h; y++, o += stride) {
                const gy = y * lineStep;
                const bits = font && gy < GLYPH_BYTES ? font[ch * GLYPH_BYTES + gy] : 0;
                if (y >= cursorTop && y <= cursorBottom) {
                    px.fill(fg, o, o + CELL_W);
                    continue;
                }
                px[o] = bits & 0x80 ? fg : bg;
                px[o + 1] = bits & 0x40 ? fg : bg;
                px[o + 2] = bits & 0x20 ? fg : bg;
                px[o + 3] = bits & 0x10 ? fg : bg;
                px[o + 4] = bits & 0x08 ? fg : bg;
                px[o + 5] = bits & 0x04 ? fg : bg;
                px[o + 6] = bits & 0x02 ? fg : bg;
                px[o + 7] = bits & 0x01 ? fg : bg;
                px[o + 8] = lineGraphics && bits & 0x01 ? fg : bg;
            }
        }
    }

    /** Is anything but black on the canvas? (for tests and the "no signal" hint) */
    isBlank() {
        const px = this.pixels32;
        const first = px[0];
        for (let i = 0; i < px.length; i += 7) if (px[i] !== first) return false;
        return true;
    }
}
