//! What a front end (the web page, an embedding) shows and sends, kept free of wasm so
//! it is tested natively: the screen as flat arrays a page reads without copying
//! (`screen.rs`), host keys as PS/2 scan codes (`keys.rs`), and the exit log's
//! instructions in nasm syntax (`disasm.rs`, iced-x86), a paused VM's registers as rows
//! of text (`vmstate.rs`). The wasm façade (`src/web/`) only exposes these.

pub mod disasm;
pub mod keys;
pub mod screen;
pub mod vmstate;

pub use screen::ScreenView;
