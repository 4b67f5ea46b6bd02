//! The ensemble's membership as `/zookeeper/config` holds it, and what a `reconfig`
//! request turns it into (ZooKeeper 3.5's dynamic reconfiguration).
//!
//! The membership lives in the replicated state: a reconfig is a SetData of
//! `/zookeeper/config` (with data version −1, as ZooKeeper writes it) riding in the
//! same Raft entry as the configuration change that makes Raft adopt it (see
//! `replica::node`). Every member therefore learns the new servers, their addresses and
//! roles from the text it applies, and a member restarting reads them from its state.
//!
//! The text is ZooKeeper's `QuorumMaj.toString`: one `server.N=…` line per server in id
//! order, then `version=<hex>`, where the version is the zxid of the txn that wrote it.

use std::collections::BTreeMap;

use ferrokeeper_net::codes::ErrorCode;
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState};

use crate::config::ensemble::{check_addresses, resolve, PeerRole, ServerSpec};

/// The servers of one configuration and its version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Every server, by id.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// The configuration's version (the zxid that wrote it; 0 for a static one).
    pub version: u64,
}

/// Why a membership text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("/zookeeper/config line {line:?}: {reason}")]
pub struct MembershipError {
    /// The offending line.
    pub line: String,
    /// Why.
    pub reason: String,
}

impl Membership {
    /// Parses `/zookeeper/config`'s text (or a dynamic file's, which has no version):
    /// `server.N=…` lines and `version=<hex>`; blank lines and other keys are ignored,
    /// as `QuorumMaj` ignores them.
    pub fn parse(text: &str, multi_address: bool) -> Result<Membership, MembershipError> {
        let mut servers = BTreeMap::new();
        let mut version = 0;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let fail = |reason: String| MembershipError {
                line: line.to_string(),
                reason,
            };
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if let Some(id) = key.strip_prefix("server.") {
                let id = id
                    .parse::<u64>()
                    .map_err(|_| fail(format!("{id:?} is not a server id")))?;
                let spec = ServerSpec::parse(id, value.trim(), multi_address).map_err(fail)?;
                servers.insert(id, spec);
            } else if key == "version" {
                version = u64::from_str_radix(value.trim(), 16)
                    .map_err(|_| fail("the version is not hexadecimal".into()))?;
            }
        }
        Ok(Membership { servers, version })
    }

    /// `/zookeeper/config`'s text: server lines, then `version=<hex>`, no final newline.
    pub fn text(&self) -> String {
        let mut text = self.server_lines();
        text.push_str(&format!("\nversion={:x}", self.version));
        text
    }

    /// The server lines alone, newline-separated without a final newline: what
    /// ZooKeeper writes into `zoo.cfg.dynamic.<version>`.
    pub fn server_lines(&self) -> String {
        self.servers
            .values()
            .map(|s| format!("server.{}={}", s.id, s.zookeeper_value()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The voting members' ids.
    pub fn voters(&self) -> Vec<u64> {
        self.ids(PeerRole::Participant)
    }

    /// The observers' ids (Raft learners).
    pub fn learners(&self) -> Vec<u64> {
        self.ids(PeerRole::Observer)
    }

    fn ids(&self, role: PeerRole) -> Vec<u64> {
        self.servers
            .values()
            .filter(|s| s.role == role)
            .map(|s| s.id)
            .collect()
    }

    /// Raft's view of this membership.
    pub fn conf_state(&self) -> ConfState {
        ConfState::from((self.voters(), self.learners()))
    }
}

/// Every other server's resolved quorum addresses, for the peer transport.
pub fn peer_addrs(
    membership: &Membership,
    my_id: u64,
) -> std::io::Result<BTreeMap<u64, Vec<std::net::SocketAddr>>> {
    let mut peers = BTreeMap::new();
    for s in membership.servers.values().filter(|s| s.id != my_id) {
        let addrs = s
            .quorum_addresses()
            .map(|(host, port)| resolve(host, port))
            .collect::<std::io::Result<Vec<_>>>()?;
        peers.insert(s.id, addrs);
    }
    Ok(peers)
}

/// A reconfig request's three strings, null and empty alike meaning "not given" (the
/// jute decoder reads a null string as empty).
#[derive(Debug, Clone, Copy)]
pub struct ReconfigAsk<'a> {
    /// `joiningServers`: `server.N=spec` entries, comma-separated.
    pub joining: &'a str,
    /// `leavingServers`: server ids, comma-separated.
    pub leaving: &'a str,
    /// `newMembers`: a whole new server list (commas or newlines between lines).
    pub new_members: &'a str,
}

/// The servers a reconfig asks for, from the last configuration `current`, checked as
/// ZooKeeper's `PrepRequestProcessor` checks them (after the version check, which the
/// caller makes): a malformed entry, a joiner without its client port, two servers on
/// one address, or too few voters is BadArguments.
pub fn next_servers(
    current: &Membership,
    ask: ReconfigAsk<'_>,
    multi_address: bool,
    standalone_enabled: bool,
) -> Result<BTreeMap<u64, ServerSpec>, ErrorCode> {
    let servers = if !ask.new_members.is_empty() {
        // Non-incremental: the list replaces the membership; commas and newlines both
        // separate lines, and keys other than server.N are ignored.
        let text = ask.new_members.replace(',', "\n");
        Membership::parse(&text, multi_address)
            .map_err(|_| ErrorCode::BadArguments)?
            .servers
    } else {
        let mut next = current.servers.clone();
        for leaving in ask.leaving.split(',').filter(|s| !s.is_empty()) {
            let id = leaving
                .trim()
                .parse::<u64>()
                .map_err(|_| ErrorCode::BadArguments)?;
            next.remove(&id);
        }
        for joiner in ask.joining.split(',').filter(|s| !s.trim().is_empty()) {
            let (key, spec) = joiner.split_once('=').ok_or(ErrorCode::BadArguments)?;
            let id = key
                .rsplit('.')
                .next()
                .and_then(|id| id.trim().parse::<u64>().ok())
                .ok_or(ErrorCode::BadArguments)?;
            let spec = ServerSpec::parse(id, spec.trim(), multi_address)
                .map_err(|_| ErrorCode::BadArguments)?;
            // Each joiner names its client port (ZooKeeper: "at least 3 ports").
            if spec.client.is_none() {
                return Err(ErrorCode::BadArguments);
            }
            next.insert(id, spec);
        }
        next
    };
    check_addresses(&servers).map_err(|_| ErrorCode::BadArguments)?;
    let voters = servers
        .values()
        .filter(|s| s.role == PeerRole::Participant)
        .count();
    let least = if standalone_enabled { 2 } else { 1 };
    if voters < least {
        return Err(ErrorCode::BadArguments);
    }
    Ok(servers)
}

/// The Raft configuration change from `from` to `to`: voters added or promoted,
/// learners added or demoted, servers removed. raft-rs enters a joint configuration
/// when more than one thing changes and leaves it by itself once that is applied.
pub fn conf_change(from: &ConfState, to: &BTreeMap<u64, ServerSpec>) -> ConfChangeV2 {
    let mut changes = Vec::new();
    let single = |change_type, node_id| {
        let mut c = ConfChangeSingle::default();
        c.set_change_type(change_type);
        c.node_id = node_id;
        c
    };
    for server in to.values() {
        match server.role {
            PeerRole::Participant if !from.voters.contains(&server.id) => {
                changes.push(single(ConfChangeType::AddNode, server.id));
            }
            PeerRole::Observer if !from.learners.contains(&server.id) => {
                changes.push(single(ConfChangeType::AddLearnerNode, server.id));
            }
            _ => {}
        }
    }
    for id in from.voters.iter().chain(&from.learners) {
        if !to.contains_key(id) {
            changes.push(single(ConfChangeType::RemoveNode, *id));
        }
    }
    let mut cc = ConfChangeV2::default();
    cc.set_changes(changes.into());
    cc
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                         server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                         server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\n\
                         version=100000000";

    fn three() -> Membership {
        Membership::parse(THREE, false).expect("parse")
    }

    fn ask<'a>(joining: &'a str, leaving: &'a str, new_members: &'a str) -> ReconfigAsk<'a> {
        ReconfigAsk {
            joining,
            leaving,
            new_members,
        }
    }

    #[test]
    fn text_round_trips_as_zookeeper_writes_it() {
        let m = three();
        assert_eq!(m.version, 0x1_0000_0000);
        assert_eq!(m.voters(), vec![1, 2, 3]);
        assert_eq!(m.text(), THREE);
        assert!(!m.server_lines().contains("version"));
    }

    #[test]
    fn incremental_add_remove_and_role_change() {
        let m = three();
        let next = next_servers(
            &m,
            ask(
                "server.4=127.0.0.1:2891:3891:participant;2184,server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183",
                "2",
                "",
            ),
            false,
            true,
        )
        .expect("valid");
        let ids: Vec<u64> = next.keys().copied().collect();
        assert_eq!(ids, vec![1, 3, 4]);
        assert_eq!(next[&3].role, PeerRole::Observer);
        // Only one voter is left: ZooKeeper wants two while standaloneEnabled.
        assert_eq!(
            next_servers(
                &m,
                ask("server.3=127.0.0.1:2890:3890:observer;2183", "2", ""),
                false,
                true
            ),
            Err(ErrorCode::BadArguments)
        );
        let cc = conf_change(&m.conf_state(), &next);
        let kinds: Vec<(ConfChangeType, u64)> = cc
            .changes
            .iter()
            .map(|c| (c.change_type, c.node_id))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ConfChangeType::AddLearnerNode, 3),
                (ConfChangeType::AddNode, 4),
                (ConfChangeType::RemoveNode, 2),
            ]
        );
    }

    #[test]
    fn bad_joiners_are_bad_arguments() {
        let m = three();
        for joining in [
            "server.4=127.0.0.1:2891:3891",            // no client port
            "server.4",                                // no spec
            "server.x=127.0.0.1:2891:3891;2184",       // no id
            "server.4=127.0.0.1:2888:3891;2184",       // server 1's quorum address
            "server.4=127.0.0.1:2891:3891:voter;2184", // unknown role
        ] {
            assert_eq!(
                next_servers(&m, ask(joining, "", ""), false, true),
                Err(ErrorCode::BadArguments),
                "{joining}"
            );
        }
        assert_eq!(
            next_servers(&m, ask("", "two", ""), false, true),
            Err(ErrorCode::BadArguments)
        );
    }

    #[test]
    fn non_incremental_replaces_the_list() {
        let m = three();
        let next = next_servers(
            &m,
            ask(
                "",
                "",
                "server.1=127.0.0.1:2888:3888;2181,server.2=127.0.0.1:2889:3889;2182",
            ),
            false,
            true,
        )
        .expect("valid");
        assert_eq!(next.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        let cc = conf_change(&m.conf_state(), &next);
        assert_eq!(cc.changes.len(), 1);
        assert_eq!(cc.changes[0].node_id, 3);
    }
}
