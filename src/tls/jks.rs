//! Reading Java's JKS keystores (the format `keytool -storetype JKS` writes), which no
//! well-kept crate reads.
//!
//! Layout (big-endian): magic `FEEDFEED`, version (1 or 2), entry count, then per entry a
//! tag (1 private key, 2 trusted certificate), an alias (u16 length + modified UTF-8) and
//! a u64 timestamp. A private key entry holds a u32-length `EncryptedPrivateKeyInfo`
//! protected with Sun's `KeyProtector` and a u32 count of chain certificates; a trusted
//! entry holds one certificate. Each certificate is (in version 2) a type string, then a
//! u32 length and the DER. The file ends with a SHA-1 over the password (UTF-16BE),
//! the text "Mighty Aphrodite" and every byte before it.
//!
//! `KeyProtector`: the protected bytes are a 20-byte salt, the key XORed with a keystream
//! of SHA-1 blocks (`d0 = salt`, `dn = SHA1(password ‖ dn-1)`), and a 20-byte SHA-1 of
//! password ‖ plain key that checks the password.

use sha1::{Digest as _, Sha1};

const MAGIC: u32 = 0xFEED_FEED;
const TAG_PRIVATE_KEY: u32 = 1;
const TAG_TRUSTED_CERT: u32 = 2;
const DIGEST_BYTES: usize = 20;
/// The OID of Sun's key protection algorithm, 1.3.6.1.4.1.42.2.17.1.1, as DER contents.
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

/// What a JKS file holds.
#[derive(Debug, Default)]
pub struct JksStore {
    /// Private keys (PKCS#8 DER) with their certificate chains (DER), leaf first.
    pub keys: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// Trusted certificates (DER).
    pub trusted: Vec<Vec<u8>>,
}

/// Why a JKS file could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JksError {
    /// The file does not start with the JKS magic number, or is cut short.
    #[error("not a JKS keystore: {0}")]
    Format(&'static str),
    /// The password does not match the file's integrity check or a key's check.
    #[error("keystore password was incorrect")]
    WrongPassword,
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(JksError::Format("truncated"))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, JksError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, JksError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn utf(&mut self) -> Result<&'a [u8], JksError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn blob(&mut self) -> Result<&'a [u8], JksError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The password as Java's `KeyProtector` and keystore digest see it: UTF-16BE.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Parses a JKS file, checking its integrity and decrypting its keys with `password`.
pub fn parse(data: &[u8], password: &str) -> Result<JksStore, JksError> {
    if data.len() < DIGEST_BYTES {
        return Err(JksError::Format("truncated"));
    }
    let (body, digest) = data.split_at(data.len() - DIGEST_BYTES);
    let pw = password_bytes(password);
    let mut r = Reader { data: body, at: 0 };
    if r.u32()? != MAGIC {
        return Err(JksError::Format("bad magic number"));
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::Format("unknown version"));
    }
    let mut check = Sha1::new();
    check.update(&pw);
    check.update(b"Mighty Aphrodite");
    check.update(body);
    if check.finalize().as_slice() != digest {
        return Err(JksError::WrongPassword);
    }
    let count = r.u32()?;
    let mut store = JksStore::default();
    for _ in 0..count {
        let tag = r.u32()?;
        let _alias = r.utf()?;
        let _timestamp = r.take(8)?;
        let cert = |r: &mut Reader<'_>| -> Result<Vec<u8>, JksError> {
            if version == 2 {
                let _cert_type = r.utf()?;
            }
            Ok(r.blob()?.to_vec())
        };
        match tag {
            TAG_PRIVATE_KEY => {
                let protected = r.blob()?;
                let chain_len = r.u32()?;
                let chain = (0..chain_len)
                    .map(|_| cert(&mut r))
                    .collect::<Result<Vec<_>, _>>()?;
                store.keys.push((recover_key(protected, &pw)?, chain));
            }
            TAG_TRUSTED_CERT => store.trusted.push(cert(&mut r)?),
            _ => return Err(JksError::Format("unknown entry type")),
        }
    }
    Ok(store)
}

/// Reads one DER TLV at the front of `data`: `(tag, contents, rest)`.
fn tlv(data: &[u8]) -> Result<(u8, &[u8], &[u8]), JksError> {
    let bad = JksError::Format("malformed protected key");
    let (&tag, rest) = data.split_first().ok_or(bad.clone())?;
    let (&first, rest) = rest.split_first().ok_or(bad.clone())?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad);
        }
        let len = rest[..n].iter().fold(0usize, |l, &b| (l << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Undoes `KeyProtector.protect`: `EncryptedPrivateKeyInfo` → PKCS#8 `PrivateKeyInfo`.
fn recover_key(encrypted_info: &[u8], pw: &[u8]) -> Result<Vec<u8>, JksError> {
    let bad = JksError::Format("malformed protected key");
    let (_, info, _) = tlv(encrypted_info)?;
    let (_, algorithm, rest) = tlv(info)?;
    let (_, oid, _) = tlv(algorithm)?;
    if oid != KEY_PROTECTOR_OID {
        return Err(JksError::Format(
            "key not protected with Sun's JKS algorithm",
        ));
    }
    let (_, protected, _) = tlv(rest)?;
    if protected.len() < 2 * DIGEST_BYTES {
        return Err(bad);
    }
    let salt = &protected[..DIGEST_BYTES];
    let encrypted = &protected[DIGEST_BYTES..protected.len() - DIGEST_BYTES];
    let expected = &protected[protected.len() - DIGEST_BYTES..];
    let mut plain = Vec::with_capacity(encrypted.len());
    let mut block = salt.to_vec();
    for chunk in encrypted.chunks(DIGEST_BYTES) {
        let mut h = Sha1::new();
        h.update(pw);
        h.update(&block);
        block = h.finalize().to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let mut h = Sha1::new();
    h.update(pw);
    h.update(&plain);
    if h.finalize().as_slice() != expected {
        return Err(JksError::WrongPassword);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_format_error() {
        assert_eq!(
            parse(&[0u8; 40], "pw").unwrap_err(),
            JksError::Format("bad magic number")
        );
        assert_eq!(
            parse(b"short", "pw").unwrap_err(),
            JksError::Format("truncated")
        );
    }

    /// An empty store (no entries) with its digest: the password is checked.
    #[test]
    fn the_password_is_checked() {
        let mut body = Vec::new();
        body.extend(MAGIC.to_be_bytes());
        body.extend(2u32.to_be_bytes());
        body.extend(0u32.to_be_bytes());
        let mut h = Sha1::new();
        h.update(password_bytes("right"));
        h.update(b"Mighty Aphrodite");
        h.update(&body);
        body.extend(h.finalize());
        assert!(parse(&body, "right").is_ok());
        assert_eq!(parse(&body, "wrong").unwrap_err(), JksError::WrongPassword);
    }
}
