//! sha256 as the format records it: lowercase hex.

use std::io::Read;

use sha2::{Digest, Sha256};

/// Streams `from` through sha256, also writing the bytes to `to` if given (the generator's
/// copies: the bytes written are the bytes hashed); returns the hex digest.
pub fn sha256_stream(
    mut from: impl Read,
    mut to: Option<&mut dyn std::io::Write>,
) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(out) = to.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// sha256 of a byte string, as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Bytes (a digest) as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
