//! What a front end (the web page, an embedding) shows and sends, kept free of wasm so
//! it is tested natively: the screen as flat arrays a page reads without copying
//! (`screen.rs`), and host keys as PS/2 scan codes (`keys.rs`). The wasm façade
//! (`src/web.rs`) only exposes these.

pub mod keys;
pub mod screen;

pub use screen::ScreenView;
