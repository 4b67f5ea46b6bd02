//! Keystores and truststores in the formats ZooKeeper reads (`X509Util`,
//! `KeyStoreFileType`): JKS, PKCS12 and PEM, chosen by `ssl.*Store.type` or else by the
//! file's extension (`.jks`, `.p12`, `.pem`). A PEM keystore is one file holding the
//! certificate chain and a PKCS#8 key, plain or encrypted with the store's password
//! (`PemReader`). BCFKS (Bouncy Castle FIPS) is not read.

use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::jks;
use super::TlsError;
pub use crate::config::tls::StoreSpec;

/// A store file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// Java KeyStore.
    Jks,
    /// PKCS#12.
    Pkcs12,
    /// PEM text.
    Pem,
}

impl StoreSpec {
    /// The format: the configured type, else the extension (as `KeyStoreFileType`).
    pub fn store_type(&self, path: &Path) -> Result<StoreType, TlsError> {
        let named = match &self.store_type {
            Some(t) => t.to_ascii_uppercase(),
            None => {
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                match ext.as_str() {
                    "jks" => "JKS".into(),
                    "p12" => "PKCS12".into(),
                    "pem" => "PEM".into(),
                    _ => {
                        return Err(TlsError::Store {
                            key: format!("{}.type", self.key),
                            reason: format!(
                                "{} has no .jks, .p12 or .pem extension and {}.type is not set",
                                path.display(),
                                self.key
                            ),
                        })
                    }
                }
            }
        };
        match named.as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "PEM" => Ok(StoreType::Pem),
            other => Err(TlsError::Store {
                key: format!("{}.type", self.key),
                reason: format!("unsupported store type {other:?} (JKS, PKCS12 or PEM)"),
            }),
        }
    }

    /// The password: the file named by `.passwordPath` (less one trailing newline, as
    /// `SecretUtils.readSecret`), else `.password`, else empty.
    pub fn password(&self) -> Result<String, TlsError> {
        if let Some(path) = &self.password_path {
            let text = std::fs::read_to_string(path).map_err(|e| TlsError::Store {
                key: format!("{}.passwordPath", self.key),
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
            return Ok(text.strip_suffix('\n').unwrap_or(&text).to_string());
        }
        Ok(self.password.clone().unwrap_or_default())
    }

    fn read(&self) -> Result<(PathBuf, Vec<u8>), TlsError> {
        let path = self.location.clone().ok_or_else(|| TlsError::Store {
            key: format!("{}.location", self.key),
            reason: "not set".into(),
        })?;
        let data = std::fs::read(&path).map_err(|e| TlsError::Store {
            key: format!("{}.location", self.key),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        Ok((path, data))
    }

    /// The error for a password that does not open the store: it names the key to fix.
    fn wrong_password(&self, detail: impl std::fmt::Display) -> TlsError {
        let key = if self.password_path.is_some() {
            format!("{}.passwordPath", self.key)
        } else {
            format!("{}.password", self.key)
        };
        TlsError::Store {
            key,
            reason: format!(
                "the password does not open {} ({detail})",
                self.location
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        }
    }

    fn malformed(&self, detail: impl std::fmt::Display) -> TlsError {
        TlsError::Store {
            key: format!("{}.location", self.key),
            reason: format!("cannot read the store: {detail}"),
        }
    }
}

/// A server identity: its certificate chain, leaf first, and its private key.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Loads the keystore's first private key and its chain.
pub fn load_key_store(spec: &StoreSpec) -> Result<Identity, TlsError> {
    let (path, data) = spec.read()?;
    let password = spec.password()?;
    let none = || spec.malformed("it holds no private key with a certificate");
    match spec.store_type(&path)? {
        StoreType::Jks => {
            let store = jks::parse(&data, &password).map_err(|e| match e {
                jks::JksError::WrongPassword => spec.wrong_password(e),
                e => spec.malformed(e),
            })?;
            let (key, chain) = store.keys.into_iter().next().ok_or_else(none)?;
            Ok((certs(chain), pkcs8(key)))
        }
        StoreType::Pkcs12 => {
            let store = open_pkcs12(spec, &data, &password)?;
            let (_, chain) = store.private_key_chain().ok_or_else(none)?;
            let certs = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            Ok((certs, pkcs8(chain.key().as_der().to_vec())))
        }
        StoreType::Pem => {
            let sections = pem_sections(&data).map_err(|e| spec.malformed(e))?;
            let mut chain = Vec::new();
            let mut key = None;
            for (label, der) in sections {
                match label.as_str() {
                    "CERTIFICATE" => chain.push(CertificateDer::from(der)),
                    "PRIVATE KEY" => key = Some(pkcs8(der)),
                    "RSA PRIVATE KEY" => key = Some(PrivateKeyDer::Pkcs1(der.into())),
                    "EC PRIVATE KEY" => key = Some(PrivateKeyDer::Sec1(der.into())),
                    "ENCRYPTED PRIVATE KEY" => {
                        key = Some(pkcs8(decrypt_pkcs8(spec, &der, &password)?));
                    }
                    _ => {}
                }
            }
            match key {
                Some(key) if !chain.is_empty() => Ok((chain, key)),
                _ => Err(none()),
            }
        }
    }
}

/// Loads the truststore's certificates.
pub fn load_trust_store(spec: &StoreSpec) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (path, data) = spec.read()?;
    let password = spec.password()?;
    let certs_found = match spec.store_type(&path)? {
        StoreType::Jks => {
            let store = jks::parse(&data, &password).map_err(|e| match e {
                jks::JksError::WrongPassword => spec.wrong_password(e),
                e => spec.malformed(e),
            })?;
            let mut all = store.trusted;
            all.extend(store.keys.into_iter().flat_map(|(_, chain)| chain));
            certs(all)
        }
        StoreType::Pkcs12 => {
            let store = open_pkcs12(spec, &data, &password)?;
            let mut all = Vec::new();
            for (_, entry) in store.entries() {
                match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => all.push(c.as_der().to_vec()),
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                        all.extend(chain.certs().iter().map(|c| c.as_der().to_vec()))
                    }
                    p12_keystore::KeyStoreEntry::Secret(_) => {}
                }
            }
            certs(all)
        }
        StoreType::Pem => pem_sections(&data)
            .map_err(|e| spec.malformed(e))?
            .into_iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| CertificateDer::from(der))
            .collect(),
    };
    if certs_found.is_empty() {
        return Err(spec.malformed("it holds no certificate"));
    }
    Ok(certs_found)
}

fn certs(ders: Vec<Vec<u8>>) -> Vec<CertificateDer<'static>> {
    ders.into_iter().map(CertificateDer::from).collect()
}

fn pkcs8(der: Vec<u8>) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
}

fn open_pkcs12(
    spec: &StoreSpec,
    data: &[u8],
    password: &str,
) -> Result<p12_keystore::KeyStore, TlsError> {
    p12_keystore::KeyStore::from_pkcs12(data, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| match e {
            // A MAC that does not verify, or a bag that does not decrypt, is what a wrong
            // password produces.
            p12_keystore::error::Error::MacError(_)
            | p12_keystore::error::Error::UnpadError
            | p12_keystore::error::Error::InvalidLength => spec.wrong_password(e),
            e => spec.malformed(e),
        })
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2) with the store's password.
fn decrypt_pkcs8(spec: &StoreSpec, der: &[u8], password: &str) -> Result<Vec<u8>, TlsError> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| spec.malformed(e))?;
    let doc = info.decrypt(password).map_err(|e| spec.wrong_password(e))?;
    Ok(doc.as_bytes().to_vec())
}

/// The sections of a PEM file, `(label, DER)`, in file order. Text outside sections is
/// skipped, as OpenSSL and Java's `PemReader` do.
pub fn pem_sections(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let Some((begun, body)) = current.take() else {
                return Err(format!("END {label} without BEGIN"));
            };
            if begun != label {
                return Err(format!("BEGIN {begun} ended by END {label}"));
            }
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|e| format!("bad base64 in {label}: {e}"))?;
            out.push((label.to_string(), der));
        } else if let Some((_, body)) = current.as_mut() {
            // Encapsulated headers (RFC 1421 `Proc-Type:`) are not base64.
            if !line.contains(':') {
                body.push_str(line);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_extension_unless_set() {
        let spec = crate::config::tls::TlsSettings::default().key_store;
        assert_eq!(spec.store_type(Path::new("a/k.JKS")), Ok(StoreType::Jks));
        assert_eq!(spec.store_type(Path::new("k.p12")), Ok(StoreType::Pkcs12));
        assert_eq!(spec.store_type(Path::new("k.pem")), Ok(StoreType::Pem));
        assert!(spec.store_type(Path::new("k.key")).is_err());
        let typed = StoreSpec {
            store_type: Some("pkcs12".into()),
            ..spec
        };
        assert_eq!(typed.store_type(Path::new("k.jks")), Ok(StoreType::Pkcs12));
    }

    #[test]
    fn pem_sections_in_order() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n\
                    -----BEGIN PRIVATE KEY-----\nAw==\n-----END PRIVATE KEY-----\n";
        let s = pem_sections(pem).expect("parses");
        assert_eq!(
            s,
            vec![
                ("CERTIFICATE".to_string(), vec![0, 1, 2]),
                ("PRIVATE KEY".to_string(), vec![3])
            ]
        );
    }
}
