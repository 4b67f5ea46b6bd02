//! Linux network namespaces for partition tests: one namespace per ensemble member, each
//! with a veth pair whose other end sits on a bridge in the test's own namespace, all on
//! one /24. The test process reaches every member through the bridge; members reach
//! each other through it too, and a blackhole route inside a member's namespace cuts
//! it off from another member (STACK-NOTES.md: `tc netem` is missing here, blackhole
//! routes work). Everything is removed on drop.
//!
//! Needs root and `ip` from iproute2; [`Netns::create`] says why when it cannot.

use std::process::{Command, Stdio};

/// The namespaces, veths and bridge of one test.
pub struct Netns {
    names: Vec<String>,
    bridge: String,
    subnet: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// `n` namespaces on a new bridge, or why that is not possible here.
    pub fn create(n: usize) -> Result<Netns, String> {
        let tag = std::process::id() % 10_000_000;
        let netns = Netns {
            names: (1..=n).map(|i| format!("fk{tag}n{i}")).collect(),
            bridge: format!("fk{tag}br"),
            subnet: format!("10.77.{}", tag % 250),
        };
        netns.build(tag)?;
        Ok(netns)
    }

    fn build(&self, tag: u32) -> Result<(), String> {
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        ip(&["link", "set", &self.bridge, "up"])?;
        let bridge_addr = format!("{}.254/24", self.subnet);
        ip(&["addr", "add", &bridge_addr, "dev", &self.bridge])?;
        for (i, name) in self.names.iter().enumerate() {
            let (outer, inner) = (format!("fk{tag}v{}", i + 1), format!("fk{tag}p{}", i + 1));
            ip(&["netns", "add", name])?;
            ip(&["netns", "exec", name, "ip", "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", name])?;
            ip(&["link", "set", &outer, "master", &self.bridge])?;
            ip(&["link", "set", &outer, "up"])?;
            let addr = format!("{}/24", self.host(i));
            ip(&[
                "netns", "exec", name, "ip", "addr", "add", &addr, "dev", &inner,
            ])?;
            ip(&["netns", "exec", name, "ip", "link", "set", &inner, "up"])?;
        }
        Ok(())
    }

    /// Member `i`'s (0-based) address.
    pub fn host(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// The command prefix that runs a program inside member `i`'s namespace.
    pub fn exec_prefix(&self, i: usize) -> Vec<String> {
        vec!["netns".into(), "exec".into(), self.names[i].clone()]
    }

    /// Cuts `i` and `j` apart in both directions (blackhole routes in both namespaces).
    pub fn cut(&self, i: usize, j: usize) {
        for (from, to) in [(i, j), (j, i)] {
            let dst = format!("{}/32", self.host(to));
            ip(&[
                "netns",
                "exec",
                &self.names[from],
                "ip",
                "route",
                "add",
                "blackhole",
                &dst,
            ])
            .unwrap_or_else(|e| panic!("cut {from} from {to}: {e}"));
        }
    }

    /// Undoes [`Netns::cut`].
    pub fn heal(&self, i: usize, j: usize) {
        for (from, to) in [(i, j), (j, i)] {
            let dst = format!("{}/32", self.host(to));
            ip(&[
                "netns",
                "exec",
                &self.names[from],
                "ip",
                "route",
                "del",
                "blackhole",
                &dst,
            ])
            .unwrap_or_else(|e| panic!("heal {from} and {to}: {e}"));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the bridge-side peer.
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
