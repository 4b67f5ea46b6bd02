//! Java system properties given the way `zkServer.sh` gives them (`-D` flags, and
//! `$SERVER_JVMFLAGS` / `$JVMFLAGS` for ferrokeeper), checked by what a client sees over
//! a real socket, beside Apache ZooKeeper started with the same flags.

mod common;
mod raw;

use common::{Kind, Launch, Server};
use raw::{digest_id, err, open_acl, perms, Conn};

/// `zookeeper.DigestAuthenticationProvider.superDigest`: a client authenticated as the
/// super user passes every ACL check (DigestAuthenticationProvider).
#[tokio::test(flavor = "multi_thread")]
async fn super_digest_as_a_system_property() {
    let super_id = digest_id("super", "secret").id;
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let launch = Launch::properties(&[(
            "zookeeper.DigestAuthenticationProvider.superDigest",
            &super_id,
        )]);
        let server = tokio::task::block_in_place(|| Server::start_with(kind, &[], &launch));
        let mut owner = Conn::connect(&server.address()).await;
        let acl = vec![ferrokeeper_net::records::Acl {
            perms: perms::ALL,
            id: digest_id("alice", "pw"),
        }];
        owner
            .create("/private", b"x", acl, 0)
            .await
            .expect("create with alice's ACL");
        owner
            .create("/open", b"y", open_acl(), 0)
            .await
            .expect("create");

        let mut stranger = Conn::connect(&server.address()).await;
        assert_eq!(
            stranger.get_data("/private", false).await.err(),
            Some(err::NO_AUTH),
            "{kind:?}"
        );
        let mut admin = Conn::connect(&server.address()).await;
        assert_eq!(
            admin.add_auth("digest", b"super:secret").await,
            0,
            "{kind:?}"
        );
        let (data, _) = admin
            .get_data("/private", false)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: super read refused with {e}"));
        assert_eq!(data, b"x");
    }
}

/// `$JVMFLAGS` is read like a shell splits it, and a `-D` argument after it wins:
/// `zookeeper.skipACL=yes` from the command line turns ACL checks off even though
/// `$JVMFLAGS` says `no`.
#[tokio::test(flavor = "multi_thread")]
async fn command_line_property_wins_over_jvmflags() {
    let launch = Launch {
        properties: vec![("zookeeper.skipACL".into(), "yes".into())],
        env: vec![(
            "JVMFLAGS".into(),
            "-Xmx1g '-Dzookeeper.skipACL=no' -Dunknown.property=1".into(),
        )],
        ..Launch::default()
    };
    let server =
        tokio::task::block_in_place(|| Server::start_with(Kind::Ferrokeeper, &[], &launch));
    let mut owner = Conn::connect(&server.address()).await;
    let acl = vec![ferrokeeper_net::records::Acl {
        perms: perms::ALL,
        id: digest_id("alice", "pw"),
    }];
    owner
        .create("/skip", b"x", acl, 0)
        .await
        .expect("create with alice's ACL");
    let mut stranger = Conn::connect(&server.address()).await;
    let (data, _) = stranger
        .get_data("/skip", false)
        .await
        .expect("skipACL=yes lets anyone read");
    assert_eq!(data, b"x");
}
