//! A throwaway PKI for the TLS tests (client ports in `tests/tls.rs`, the AdminServer's
//! HTTPS in `tests/admin_https.rs`), made with the `openssl` command and, for JKS,
//! Java's `keytool`, in a temp directory removed on drop (kept when the test fails).
//!
//! In it: a CA; a server certificate for 127.0.0.1 and localhost; a v3 client
//! certificate ([`CLIENT_V3_SUBJ`]) and a v1 one ([`CLIENT_V1_SUBJ`]), all signed by the
//! CA; the server's key and chain as PEM stores (`keystore.pem`, and `keystore-enc.pem`
//! with the key encrypted by [`STORE_PASSWORD`]), as PKCS12 (`keystore.p12`), the
//! password in `password.txt`; and, after [`Pki::make_jks`], `keystore.jks`,
//! `truststore.jks` and `truststore.p12`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The password of every store and of the encrypted PEM key.
pub const STORE_PASSWORD: &str = "s3cret-pass";

/// The DN the v3 client certificate's subject has, as Java's `X500Principal.getName()`
/// prints it (RFC 2253: most specific first, email address by OID, DER hex value).
pub const CLIENT_V3_DN: &str =
    "1.2.840.113549.1.9.1=#16056140622e63,CN=client,OU=eng,O=Example Inc,C=US";
pub const CLIENT_V3_SUBJ: &str = "/C=US/O=Example Inc/OU=eng/CN=client/emailAddress=a@b.c";
/// The v1 client certificate (no extensions: pyOpenSSL's and `openssl x509 -req`'s default).
pub const CLIENT_V1_DN: &str = "CN=legacy v1,O=Old PKI";
pub const CLIENT_V1_SUBJ: &str = "/O=Old PKI/CN=legacy v1";

/// Whether `tool` runs (with `probe` as its arguments) and succeeds.
pub fn have(tool: &str, probe: &[&str]) -> bool {
    Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `cmd`, fails the test with its output unless it succeeds, and returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "ferrokeeper-tests/pki-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("create pki dir");
        let pki = Pki { dir };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ferrokeeper test CA",
        ]);
        pki.write(
            "server.ext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        );
        pki.write(
            "client.ext",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        pki.sign("server", "/CN=localhost", Some("server.ext"));
        pki.sign("client", CLIENT_V3_SUBJ, Some("client.ext"));
        pki.sign("client-v1", CLIENT_V1_SUBJ, None);
        let text = pki.openssl(&["x509", "-noout", "-text", "-in", "client-v1.pem"]);
        assert!(
            text.contains("Version: 1 (0x0)"),
            "not a v1 certificate:\n{text}"
        );
        // PEM keystores: the chain and the PKCS#8 key in one file (`PemReader`), the key
        // plain (`keystore.pem`) or encrypted with the store password
        // (`keystore-enc.pem`: Java 17 cannot read the PBES2 encryption openssl uses,
        // "PBES2 SecretKeyFactory not available", so only ferrokeeper gets that one).
        let pass = format!("pass:{STORE_PASSWORD}");
        pki.openssl(&[
            "pkcs8",
            "-topk8",
            "-in",
            "server.key",
            "-out",
            "server-enc.key",
            "-passout",
            &pass,
            "-v2",
            "aes-256-cbc",
        ]);
        let chain = pki.read("server.pem");
        for (store, key) in [
            ("keystore.pem", "server.key"),
            ("keystore-enc.pem", "server-enc.key"),
        ] {
            pki.write(store, &format!("{chain}{}", pki.read(key)));
        }
        pki.openssl(&[
            "pkcs12",
            "-export",
            "-in",
            "server.pem",
            "-inkey",
            "server.key",
            "-certfile",
            "ca.pem",
            "-name",
            "server",
            "-out",
            "keystore.p12",
            "-passout",
            &pass,
        ]);
        pki.write("password.txt", &format!("{STORE_PASSWORD}\n"));
        pki
    }

    /// A file of the PKI, as a path string for a config line or a tool's argument.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).expect("read a pki file")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).expect("write a pki file");
    }

    /// Runs `openssl` in the PKI's directory and returns its stdout.
    pub fn openssl(&self, args: &[&str]) -> String {
        run(Command::new("openssl").args(args).current_dir(&self.dir))
    }

    /// `<name>.key` and `<name>.pem`: a new key and its certificate for `subj`, signed by
    /// the CA, with the extensions in the file `ext` if given.
    pub fn sign(&self, name: &str, subj: &str, ext: Option<&str>) {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subj,
        ]);
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
        ];
        if let Some(ext) = ext {
            args.extend(["-extfile", ext]);
        }
        self.openssl(&args);
    }

    /// The JKS keystore and truststore and a PKCS12 truststore (Java's `keytool`); false
    /// when keytool is missing.
    pub fn make_jks(&self) -> bool {
        if !have("keytool", &["-help"]) {
            return false;
        }
        let k = |args: &[&str]| {
            run(Command::new("keytool").args(args).current_dir(&self.dir));
        };
        k(&[
            "-importkeystore",
            "-srckeystore",
            "keystore.p12",
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            STORE_PASSWORD,
            "-destkeystore",
            "keystore.jks",
            "-deststoretype",
            "JKS",
            "-deststorepass",
            STORE_PASSWORD,
            "-noprompt",
        ]);
        for (store, kind) in [("truststore.jks", "JKS"), ("truststore.p12", "PKCS12")] {
            k(&[
                "-importcert",
                "-noprompt",
                "-alias",
                "ca",
                "-file",
                "ca.pem",
                "-keystore",
                store,
                "-storetype",
                kind,
                "-storepass",
                STORE_PASSWORD,
            ]);
        }
        true
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
