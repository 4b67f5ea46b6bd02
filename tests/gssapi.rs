//! SASL GSSAPI (Kerberos V5, RFC 4752) end to end: a throwaway MIT KDC in a temp dir, a
//! JAAS `Server` section logging in as `zookeeper/localhost` from a keytab, and real
//! clients (kazoo over pure-sasl and pykerberos; the Java shell `zkCli.sh` with a
//! `Krb5LoginModule` client section), each case run against Debian's Java ZooKeeper and
//! against ferrokeeper with the same files; what the clients print must be equal
//! (ZOOKEEPER-SECURITY-OPS.md §1, "How the authenticated id is derived" and "GSSAPI").
//!
//! ferrokeeper needs the `gssapi` feature for this: `cargo test --release --features
//! gssapi --test gssapi`. Without it only the startup refusal is checked. Every case
//! skips, saying why, when the KDC tools (krb5-kdc, krb5-admin-server, krb5-user) or
//! pykerberos are missing; tests/run.sh installs them.
//!
//! Servers and the KDC listen on ports 23000–23999 (this suite's range; it starts in
//! the upper half, away from tests/sasl.rs, and every port is checked free first).

mod common;

/// Without the feature, a JAAS `Server` section with `Krb5LoginModule` stops the server
/// at startup with a message naming the feature to build with.
#[cfg(not(feature = "gssapi"))]
#[test]
fn without_the_feature_kerberos_login_names_the_feature() {
    let dir = std::env::temp_dir()
        .join("ferrokeeper-tests")
        .join(format!("gssapi-nofeature-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).expect("dir");
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
         keyTab=\"/nonexistent.keytab\" storeKey=true principal=\"zookeeper/localhost@R\"; };",
    )
    .expect("jaas");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\nclientPortAddress=127.0.0.1\nclientPort={}\ndataDir={}\n",
            common::free_port(),
            dir.join("data").display()
        ),
    )
    .expect("zoo.cfg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
        .arg(format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        ))
        .arg(&cfg)
        .output()
        .expect("run ferrokeeper");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "started without GSSAPI support:\n{text}"
    );
    assert!(
        text.contains("--features gssapi") && text.contains("Krb5LoginModule"),
        "the startup error does not name the feature:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "gssapi")]
mod kerberos {

    use std::io::Write;
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use super::common::{free_port, run_client, Kind, Launch, Server};

    const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
    const REALM: &str = "FERRO.TEST";

    /// How long setting up or running one client may take before the test gives up (a hang
    /// guard, never a timed assertion).
    const HANG_LIMIT: Duration = Duration::from_secs(180);

    /// The KDC of this test process, its realm's files and keytabs.
    struct Kdc {
        dir: PathBuf,
        krb5_conf: PathBuf,
    }

    fn run(what: &str, command: &mut Command) -> Result<String, String> {
        let out = command
            .output()
            .map_err(|e| format!("{what}: cannot run {command:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{what} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Why the Kerberos tools are missing, if they are.
    fn tools_missing() -> Option<String> {
        for tool in [
            "/usr/sbin/krb5kdc",
            "/usr/sbin/kdb5_util",
            "/usr/sbin/kadmin.local",
            "/usr/bin/kinit",
        ] {
            if !Path::new(tool).exists() {
                return Some(format!(
                    "{tool} is missing (Debian packages krb5-kdc, krb5-admin-server, krb5-user; \
                 tests/run.sh installs them)"
                ));
            }
        }
        None
    }

    /// The KDC, set up once per test process: realm FERRO.TEST on a port of this suite,
    /// principals zookeeper/localhost and client with keytabs, and `zk-stale.keytab`, a
    /// keytab of zookeeper/localhost whose key the KDC has since replaced.
    fn kdc() -> Result<&'static Kdc, String> {
        static KDC: OnceLock<Result<Kdc, String>> = OnceLock::new();
        KDC.get_or_init(start_kdc).as_ref().map_err(Clone::clone)
    }

    fn start_kdc() -> Result<Kdc, String> {
        if let Some(why) = tools_missing() {
            return Err(why);
        }
        let dir = std::env::temp_dir()
            .join("ferrokeeper-tests")
            .join(format!("gssapi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let kdc_port = free_port();
        let d = dir.display();
        let krb5_conf = dir.join("krb5.conf");
        // TCP only (udp_preference_limit = 1): Java and MIT both honour it.
        std::fs::write(
            &krb5_conf,
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n \
             dns_lookup_kdc = false\n rdns = false\n udp_preference_limit = 1\n \
             ignore_acceptor_hostname = false\n\
             [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{kdc_port}\n }}\n\
             [domain_realm]\n localhost = {REALM}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let kdc_conf = dir.join("kdc.conf");
        std::fs::write(
        &kdc_conf,
        format!(
            "[kdcdefaults]\n kdc_ports = {kdc_port}\n kdc_tcp_ports = {kdc_port}\n\
             [realms]\n {REALM} = {{\n  database_name = {d}/principal\n  \
             key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  \
             supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }}\n\
             [logging]\n kdc = FILE:{d}/kdc.log\n"
        ),
    )
    .map_err(|e| e.to_string())?;
        let env = |c: &mut Command| {
            c.env("KRB5_CONFIG", &krb5_conf)
                .env("KRB5_KDC_PROFILE", &kdc_conf);
        };
        let mut c = Command::new("/usr/sbin/kdb5_util");
        c.args([
            "create",
            "-s",
            "-r",
            REALM,
            "-P",
            "master-password-of-a-test",
        ]);
        env(&mut c);
        run("kdb5_util create", &mut c)?;
        let kadmin = |query: &str| {
            let mut c = Command::new("/usr/sbin/kadmin.local");
            c.args(["-r", REALM, "-q", query]);
            env(&mut c);
            run(&format!("kadmin.local {query}"), &mut c)
        };
        kadmin("addprinc -randkey zookeeper/localhost")?;
        kadmin("addprinc -randkey client")?;
        // ktadd gives the principal new keys: the first keytab is stale once the second
        // is written.
        kadmin(&format!("ktadd -k {d}/zk-stale.keytab zookeeper/localhost"))?;
        kadmin(&format!("ktadd -k {d}/zk.keytab zookeeper/localhost"))?;
        kadmin(&format!("ktadd -k {d}/client-stale.keytab client"))?;
        kadmin(&format!("ktadd -k {d}/client.keytab client"))?;

        // krb5kdc in the foreground from a thread that never ends, so that it dies with
        // this process (its parent-death signal is tied to the spawning thread).
        let (tx, rx) = std::sync::mpsc::channel();
        let log = dir.join("krb5kdc.out");
        let (krb5_conf2, kdc_conf2) = (krb5_conf.clone(), kdc_conf.clone());
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut c = Command::new("/usr/sbin/krb5kdc");
            c.args(["-n", "-r", REALM])
                .env("KRB5_CONFIG", &krb5_conf2)
                .env("KRB5_KDC_PROFILE", &kdc_conf2)
                .stdout(Stdio::from(std::fs::File::create(&log).expect("kdc log")))
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                c.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = c.spawn();
            let _ = tx.send(child.map(|_| ()).map_err(|e| e.to_string()));
            loop {
                std::thread::park();
            }
        });
        rx.recv().map_err(|e| e.to_string())??;
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", kdc_port)).is_err() {
            if start.elapsed() > HANG_LIMIT {
                return Err(format!("krb5kdc never listened on {kdc_port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let kdc = Kdc { dir, krb5_conf };
        std::fs::write(kdc.dir.join("jaas.conf"), kdc.jaas()).map_err(|e| e.to_string())?;
        // The client's ticket-granting ticket, for kazoo (pykerberos reads KRB5CCNAME).
        let mut c = Command::new("/usr/bin/kinit");
        c.args(["-kt"])
            .arg(kdc.dir.join("client.keytab"))
            .arg(format!("client@{REALM}"))
            .env("KRB5_CONFIG", &kdc.krb5_conf)
            .env("KRB5CCNAME", kdc.ccache());
        run("kinit client", &mut c)?;
        Ok(kdc)
    }

    impl Kdc {
        fn jaas(&self) -> String {
            let d = self.dir.display();
            let login = |keytab: &str, principal: &str, extra: &str| {
                format!(
                    "    com.sun.security.auth.module.Krb5LoginModule required\n    useKeyTab=true\n    \
                     keyTab=\"{d}/{keytab}\"\n    storeKey=true\n    useTicketCache=false\n    \
                     {extra}principal=\"{principal}\";\n"
                )
            };
            let zk = format!("zookeeper/localhost@{REALM}");
            let client = format!("client@{REALM}");
            // ServerStale: isInitiator=false, so that Java's login only loads the keytab
            // (with the default, true, it asks the KDC for a ticket and the stale key
            // stops the Java server at startup).
            format!(
                "Server {{\n{}}};\nServerStale {{\n{}}};\nClient {{\n{}}};\nClientStale {{\n{}}};\n",
                login("zk.keytab", &zk, ""),
                login("zk-stale.keytab", &zk, "isInitiator=false\n    "),
                login("client.keytab", &client, ""),
                login("client-stale.keytab", &client, ""),
            )
        }

        fn jaas_path(&self) -> PathBuf {
            self.dir.join("jaas.conf")
        }

        fn ccache(&self) -> String {
            format!("FILE:{}/ccache-client", self.dir.display())
        }

        /// A server of `kind` logging in with the JAAS section `section` (`Server` or
        /// `ServerStale`), the `sasl` provider registered, and these system properties.
        fn server(&self, kind: Kind, section: &str, properties: &[(&str, &str)]) -> Server {
            let jaas = self.jaas_path().display().to_string();
            let krb5 = self.krb5_conf.display().to_string();
            let mut props = vec![
                ("java.security.auth.login.config", jaas.as_str()),
                ("java.security.krb5.conf", krb5.as_str()),
                ("zookeeper.sasl.serverconfig", section),
            ];
            props.extend_from_slice(properties);
            let mut launch = Launch::properties(&props);
            launch.env = vec![
                ("KRB5_CONFIG".into(), krb5.clone()),
                ("KRB5RCACHEDIR".into(), self.dir.display().to_string()),
            ];
            Server::start_on_port_with(
                kind,
                free_port(),
                &[("authProvider.1", SASL_PROVIDER)],
                &launch,
            )
        }
    }

    /// The KDC, or None after printing why the test skips.
    fn kdc_or_skip() -> Option<&'static Kdc> {
        match kdc() {
            Ok(k) => Some(k),
            Err(why) => {
                eprintln!("SKIPPED: no throwaway KDC: {why}");
                None
            }
        }
    }

    // ------------------------------------------------------------------ kazoo

    /// Why kazoo cannot speak GSSAPI here, if it cannot.
    fn kazoo_missing(python: &str) -> Option<String> {
        let probe = Command::new(python)
            .args(["-c", "import kazoo, puresasl, kerberos"])
            .output();
        match probe {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Some(e.to_string()),
        }
    }

    /// Runs tests/cross/kazoo_gssapi.py against a server of each kind started with
    /// `section` and `properties`; the check lines must be the same for both.
    fn kazoo_both(name: &str, section: &str, properties: &[(&str, &str)], expected: &str) {
        let Some(kdc) = kdc_or_skip() else { return };
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        if let Some(why) = kazoo_missing(&python) {
            eprintln!(
            "SKIPPED: kazoo with pure-sasl and pykerberos is not importable by {python} ({why}); \
             `python3 -m pip install kazoo pure-sasl kerberos` (tests/run.sh does it)"
        );
            return;
        }
        let mut transcripts = Vec::new();
        for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
            let server = kdc.server(kind, section, properties);
            let mut command = Command::new(&python);
            command
                .arg("-u")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cross/kazoo_gssapi.py"))
                .arg(format!("localhost:{}", server.port))
                .arg(format!("/{name}"))
                .arg(expected)
                .env("KRB5_CONFIG", &kdc.krb5_conf)
                .env("KRB5CCNAME", kdc.ccache());
            let (ok, output) = run_client(command, "", &server.dir.join("kazoo.out"));
            assert!(
                ok,
                "kazoo GSSAPI checks against {kind:?}:\n{output}\n--- server log ---\n{}",
                server.log()
            );
            let lines: Vec<String> = output
                .lines()
                .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL "))
                .map(str::to_string)
                .collect();
            println!("{kind:?}:\n{}", lines.join("\n"));
            transcripts.push(lines);
        }
        assert_eq!(
            transcripts[1], transcripts[0],
            "ferrokeeper (left) differs from Java ZooKeeper (right)"
        );
    }

    /// By default the id is the whole principal (DEFAULT rule, host and realm kept).
    #[test]
    fn kazoo_gssapi_login_id_is_the_principal() {
        kazoo_both("kazoo-gss", "Server", &[], &format!("client@{REALM}"));
    }

    /// `zookeeper.kerberos.removeRealmFromPrincipal=true`: the DEFAULT short name alone.
    #[test]
    fn kazoo_gssapi_remove_realm() {
        kazoo_both(
            "kazoo-gss-norealm",
            "Server",
            &[("zookeeper.kerberos.removeRealmFromPrincipal", "true")],
            "client",
        );
    }

    /// An `auth_to_local` RULE maps the principal; the realm is appended again.
    #[test]
    fn kazoo_gssapi_auth_to_local_rule() {
        kazoo_both(
            "kazoo-gss-rule",
            "Server",
            &[(
                "zookeeper.security.auth_to_local",
                "RULE:[1:$1@$0](client@FERRO\\.TEST)s/client@.*/ops/ DEFAULT",
            )],
            &format!("ops@{REALM}"),
        );
    }

    /// A RULE that applies but leaves `@` in the name makes Java's `getShortName` throw
    /// (NoMatchingRule "Non-simple name"); DEFAULT is not tried, and the id stays the
    /// authorization id the client asked for, the whole principal, even though the
    /// realm was to be removed.
    #[test]
    fn kazoo_gssapi_non_simple_rule_keeps_the_principal() {
        kazoo_both(
            "kazoo-gss-nonsimple",
            "Server",
            &[
                (
                    "zookeeper.security.auth_to_local",
                    "RULE:[1:$1@$0](client@FERRO\\.TEST)s/client/ops/ DEFAULT",
                ),
                ("zookeeper.kerberos.removeRealmFromPrincipal", "true"),
            ],
            &format!("client@{REALM}"),
        );
    }

    /// A server whose keytab holds an old key of its principal cannot decrypt the client's
    /// ticket: the exchange fails and the client is refused.
    #[test]
    fn kazoo_gssapi_stale_server_key_is_refused() {
        kazoo_both("kazoo-gss-stale", "ServerStale", &[], "refused");
    }

    // ------------------------------------------------------------------ raw bytes

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// One request and its reply header's error, or `closed` when the server closed
    /// the connection instead; a SASL reply also shows whether its token is null.
    fn request(s: &mut TcpStream, xid: i32, op: i32, body: &[u8]) -> String {
        use ferrokeeper_net::jute::{Decode, Encode};
        use ferrokeeper_net::records::{ReplyHeader, RequestHeader};
        use std::io::Read;
        let mut p = RequestHeader { xid, r#type: op }.to_bytes();
        p.extend_from_slice(body);
        if s.write_all(&frame(&p)).is_err() {
            return "closed".into();
        }
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return "closed".into();
        }
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        if s.read_exact(&mut buf).is_err() {
            return "closed".into();
        }
        let mut r = ferrokeeper_net::Reader::new(&buf);
        let h = ReplyHeader::decode(&mut r).expect("reply header");
        if op == 102 {
            let token = ferrokeeper_net::NullableBuffer::decode(&mut r).expect("SetSASLResponse");
            let shown = if token.0.is_none() { "null" } else { "bytes" };
            return format!("err={} token={shown}", h.err);
        }
        format!("err={}", h.err)
    }

    fn connect_raw(port: u16) -> TcpStream {
        use ferrokeeper_net::jute::Encode;
        use ferrokeeper_net::records::ConnectRequest;
        use std::io::Read;
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        // Only a hang guard: no case waits for time to pass.
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut p = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: vec![0; 16].into(),
        }
        .to_bytes();
        false.encode(&mut p);
        s.write_all(&frame(&p)).expect("send connect");
        let mut len = [0u8; 4];
        s.read_exact(&mut len).expect("connect reply");
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).expect("connect reply");
        s
    }

    fn sasl_token(token: &[u8]) -> Vec<u8> {
        use ferrokeeper_net::jute::Encode;
        ferrokeeper_net::records::GetSaslRequest {
            token: token.to_vec().into(),
        }
        .to_bytes()
    }

    /// Bad input during a GSSAPI exchange (a token that is no GSS token, an empty first
    /// token): AuthFailed with a null token, then the connection is closed, as by Java;
    /// the server keeps serving.
    #[test]
    fn garbage_gssapi_tokens_are_auth_failed_and_close() {
        let Some(kdc) = kdc_or_skip() else { return };
        let exists_root = {
            use ferrokeeper_net::jute::Encode;
            ferrokeeper_net::records::ExistsRequest {
                path: "/".into(),
                watch: false,
            }
            .to_bytes()
        };
        let mut transcripts = Vec::new();
        for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
            let server = kdc.server(kind, "Server", &[]);
            let mut t = Vec::new();
            for token in [&b"\x60\x05garbage-not-a-gss-token"[..], b"\xff", b""] {
                let mut c = connect_raw(server.port);
                t.push(request(&mut c, 1, 102, &sasl_token(token)));
                t.push(request(&mut c, 2, 3, &exists_root));
            }
            let mut c = connect_raw(server.port);
            t.push(request(&mut c, 1, 3, &exists_root));
            println!("{kind:?}: {t:?}");
            assert_eq!(
                t[..2],
                ["err=-115 token=null", "closed"],
                "{kind:?}: {t:?}\n{}",
                server.log()
            );
            assert_eq!(
                server.four_letter("ruok"),
                "imok",
                "{kind:?} stopped answering"
            );
            transcripts.push(t);
        }
        assert_eq!(
            transcripts[1], transcripts[0],
            "ferrokeeper (left) differs from Java ZooKeeper (right)"
        );
    }

    // ------------------------------------------------------------------ zkCli.sh

    const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

    /// The Java client logs in from its keytab (JAAS `Client` section), sees its id with
    /// `whoami`, and protects a node with it.
    #[test]
    fn zkcli_gssapi_login_whoami_and_acl() {
        let Some(kdc) = kdc_or_skip() else { return };
        assert!(
            Path::new(ZKCLI).exists(),
            "zkCli.sh is missing: tests/run.sh installs Debian's zookeeper package"
        );
        let mut transcripts = Vec::new();
        for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
            let server = kdc.server(kind, "Server", &[]);
            let mut command = Command::new(ZKCLI);
            command
                .arg("-server")
                .arg(format!("localhost:{}", server.port))
                .env(
                    "CLIENT_JVMFLAGS",
                    format!(
                        "-Djava.security.auth.login.config={} -Djava.security.krb5.conf={}",
                        kdc.jaas_path().display(),
                        kdc.krb5_conf.display()
                    ),
                );
            let (_, output) = run_client(
                command,
                &format!(
                    "whoami\ncreate /zkcli-gss x\nsetAcl /zkcli-gss sasl:client@{REALM}:cdrwa\n\
                 getAcl /zkcli-gss\nget /zkcli-gss\nquit\n"
                ),
                &server.dir.join("zkcli.out"),
            );
            let lines: Vec<&str> = output.lines().map(str::trim).collect();
            let mut seen = Vec::new();
            for want in [
                "WatchedEvent state:SaslAuthenticated type:None path:null".to_string(),
                format!("sasl: client@{REALM}"),
                "ip: 127.0.0.1".to_string(),
                "Created /zkcli-gss".to_string(),
                format!("'sasl,'client@{REALM}"),
                ": cdrwa".to_string(),
                "x".to_string(),
            ] {
                assert!(
                    lines.contains(&want.as_str()),
                    "{kind:?}: zkCli.sh did not print {want:?}:\n{output}\n--- server log ---\n{}",
                    server.log()
                );
                seen.push(want);
            }
            transcripts.push(seen);
        }
        assert_eq!(transcripts[1], transcripts[0]);
    }

    /// A Java client whose keytab holds an old key cannot log in at the KDC: it reports
    /// AuthFailed whichever server it talks to.
    #[test]
    fn zkcli_gssapi_stale_client_key_is_auth_failed() {
        let Some(kdc) = kdc_or_skip() else { return };
        for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
            let server = kdc.server(kind, "Server", &[]);
            let mut command = Command::new(ZKCLI);
            command
                .arg("-server")
                .arg(format!("localhost:{}", server.port))
                .env(
                    "CLIENT_JVMFLAGS",
                    format!(
                        "-Djava.security.auth.login.config={} -Djava.security.krb5.conf={} \
                         -Dzookeeper.sasl.clientconfig=ClientStale",
                        kdc.jaas_path().display(),
                        kdc.krb5_conf.display()
                    ),
                );
            let (_, output) =
                run_client(command, "ls /\nquit\n", &server.dir.join("zkcli-stale.out"));
            assert!(
                output.contains("state:AuthFailed"),
                "{kind:?}: zkCli.sh with a stale key did not report AuthFailed:\n{output}"
            );
        }
    }
}
