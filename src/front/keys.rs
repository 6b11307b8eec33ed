//! Host keys to PS/2 keyboard bytes. The page reports keys by `KeyboardEvent.code` (the
//! physical key on a US layout, W3C "UI Events KeyboardEvent code Values"); the keyboard
//! sends scan code set 2, which the 8042 translates to set 1 for the guest when asked to.
//! Make codes are those of the IBM PS/2 keyboard (Microsoft, "Keyboard Scan Code
//! Specification", Appendix C, scan code set 2); a release is F0 before the make code, and
//! extended keys carry an E0 prefix before both.

use alloc::vec::Vec;

/// Set 2 make code of a key and whether it carries the E0 prefix.
pub fn set2_code(code: &str) -> Option<(u8, bool)> {
    let plain = |c: u8| Some((c, false));
    let ext = |c: u8| Some((c, true));
    match code {
        "Escape" => plain(0x76),
        "F1" => plain(0x05),
        "F2" => plain(0x06),
        "F3" => plain(0x04),
        "F4" => plain(0x0C),
        "F5" => plain(0x03),
        "F6" => plain(0x0B),
        "F7" => plain(0x83),
        "F8" => plain(0x0A),
        "F9" => plain(0x01),
        "F10" => plain(0x09),
        "F11" => plain(0x78),
        "F12" => plain(0x07),
        "Backquote" => plain(0x0E),
        "Digit1" => plain(0x16),
        "Digit2" => plain(0x1E),
        "Digit3" => plain(0x26),
        "Digit4" => plain(0x25),
        "Digit5" => plain(0x2E),
        "Digit6" => plain(0x36),
        "Digit7" => plain(0x3D),
        "Digit8" => plain(0x3E),
        "Digit9" => plain(0x46),
        "Digit0" => plain(0x45),
        "Minus" => plain(0x4E),
        "Equal" => plain(0x55),
        "Backspace" => plain(0x66),
        "Tab" => plain(0x0D),
        "KeyQ" => plain(0x15),
        "KeyW" => plain(0x1D),
        "KeyE" => plain(0x24),
        "KeyR" => plain(0x2D),
        "KeyT" => plain(0x2C),
        "KeyY" => plain(0x35),
        "KeyU" => plain(0x3C),
        "KeyI" => plain(0x43),
        "KeyO" => plain(0x44),
        "KeyP" => plain(0x4D),
        "BracketLeft" => plain(0x54),
        "BracketRight" => plain(0x5B),
        "Backslash" => plain(0x5D),
        "CapsLock" => plain(0x58),
        "KeyA" => plain(0x1C),
        "KeyS" => plain(0x1B),
        "KeyD" => plain(0x23),
        "KeyF" => plain(0x2B),
        "KeyG" => plain(0x34),
        "KeyH" => plain(0x33),
        "KeyJ" => plain(0x3B),
        "KeyK" => plain(0x42),
        "KeyL" => plain(0x4B),
        "Semicolon" => plain(0x4C),
        "Quote" => plain(0x52),
        "Enter" => plain(0x5A),
        "ShiftLeft" => plain(0x12),
        "IntlBackslash" => plain(0x61),
        "KeyZ" => plain(0x1A),
        "KeyX" => plain(0x22),
        "KeyC" => plain(0x21),
        "KeyV" => plain(0x2A),
        "KeyB" => plain(0x32),
        "KeyN" => plain(0x31),
        "KeyM" => plain(0x3A),
        "Comma" => plain(0x41),
        "Period" => plain(0x49),
        "Slash" => plain(0x4A),
        "ShiftRight" => plain(0x59),
        "ControlLeft" => plain(0x14),
        "AltLeft" => plain(0x11),
        "Space" => plain(0x29),
        "AltRight" => ext(0x11),
        "ControlRight" => ext(0x14),
        "MetaLeft" => ext(0x1F),
        "MetaRight" => ext(0x27),
        "ContextMenu" => ext(0x2F),
        "Insert" => ext(0x70),
        "Home" => ext(0x6C),
        "PageUp" => ext(0x7D),
        "Delete" => ext(0x71),
        "End" => ext(0x69),
        "PageDown" => ext(0x7A),
        "ArrowUp" => ext(0x75),
        "ArrowLeft" => ext(0x6B),
        "ArrowDown" => ext(0x72),
        "ArrowRight" => ext(0x74),
        "NumLock" => plain(0x77),
        "NumpadDivide" => ext(0x4A),
        "NumpadMultiply" => plain(0x7C),
        "NumpadSubtract" => plain(0x7B),
        "NumpadAdd" => plain(0x79),
        "NumpadEnter" => ext(0x5A),
        "NumpadDecimal" => plain(0x71),
        "Numpad0" => plain(0x70),
        "Numpad1" => plain(0x69),
        "Numpad2" => plain(0x72),
        "Numpad3" => plain(0x7A),
        "Numpad4" => plain(0x6B),
        "Numpad5" => plain(0x73),
        "Numpad6" => plain(0x74),
        "Numpad7" => plain(0x6C),
        "Numpad8" => plain(0x75),
        "Numpad9" => plain(0x7D),
        "ScrollLock" => plain(0x7E),
        _ => None,
    }
}

/// The bytes the keyboard sends when the key `code` goes down (`down`) or up; empty for
/// keys it does not know.
pub fn set2_bytes(code: &str, down: bool) -> Vec<u8> {
    let Some((make, extended)) = set2_code(code) else { return Vec::new() };
    let mut out = Vec::with_capacity(3);
    if extended {
        out.push(0xE0);
    }
    if !down {
        out.push(0xF0);
    }
    out.push(make);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn press_and_release() {
        assert_eq!(set2_bytes("KeyA", true), [0x1C]);
        assert_eq!(set2_bytes("KeyA", false), [0xF0, 0x1C]);
        assert_eq!(set2_bytes("ArrowUp", false), [0xE0, 0xF0, 0x75]);
        assert!(set2_bytes("Fn", true).is_empty());
    }

    #[test]
    fn agrees_with_the_8042s_ascii_table() {
        use crate::devices::i8042::ascii_to_set2;
        for (code, ch) in [("KeyA", b'a'), ("KeyZ", b'z'), ("Digit1", b'1'), ("Enter", b'\n'), ("Space", b' ')] {
            assert_eq!(set2_code(code).map(|c| c.0), ascii_to_set2(ch).map(|c| c.0), "{code}");
        }
    }
}
