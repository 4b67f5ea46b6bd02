//! Reads the golden fixtures written by `golden/capture.py`: one frame per line,
//! `<label> <hex of the whole frame>`, `#` starts a comment line.
#![allow(dead_code)]

use std::path::PathBuf;

/// The sessions captured, by fixture name.
pub const SESSIONS: [&str; 5] = ["java", "zkcli", "kazoo", "cli_mt", "raw"];

/// One captured frame.
pub struct Frame {
    /// `connect`, `connect_response`, `notification` or the request's opcode name.
    pub label: String,
    /// The whole frame, length prefix included.
    pub bytes: Vec<u8>,
}

/// The frames of one session in one direction (`c2s` or `s2c`).
pub fn fixture(session: &str, direction: &str) -> Vec<Frame> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{session}.{direction}.hex"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (label, hex) = l.split_once(' ').expect("<label> <hex>");
            Frame {
                label: label.to_string(),
                bytes: decode_hex(hex.trim()),
            }
        })
        .collect()
}

fn decode_hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
