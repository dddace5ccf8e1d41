//! Network namespaces for process-mode partitions: a bridge in the host's namespace carries
//! the addresses of etcd and the storage nodes, and each broker that may be cut off runs in
//! a namespace of its own joined to the bridge by a veth pair. A cut is an iptables `DROP` of
//! everything to and from one address, inside the broker's namespace only: the broker's
//! packets vanish silently, as in a real partition, while everyone else is untouched.
//!
//! Needs root, `ip` and `iptables`; [`Net::available`] says why not when they are missing.
//! Names carry the creating process id, so leftovers of a killed test run are recognised and
//! removed by the next run.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// Prefix of every namespace we create: `stf-{pid}-{net}-{n}`.
const NS_PREFIX: &str = "stf-";

fn run(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("cannot run {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A bridge with addresses for services and namespaces for brokers.
#[derive(Debug)]
pub struct Net {
    bridge: String,
    /// The first three octets of the /24 the bridge serves.
    prefix: [u8; 3],
    tag: String,
    namespaces: Vec<String>,
    next_host: u8,
    next_ns: u8,
}

impl Net {
    /// Whether namespaces can be used here; the reason when not. Probed once per process.
    pub fn available() -> Result<(), String> {
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        PROBE
            .get_or_init(|| {
                Self::remove_stale();
                let name = format!("{NS_PREFIX}{}-probe", std::process::id());
                let result = run(&["ip", "netns", "add", &name])
                    .and_then(|_| run(&["ip", "netns", "exec", &name, "iptables", "-S"]));
                let _ = run(&["ip", "netns", "del", &name]);
                result.map(|_| ()).map_err(|e| {
                    format!(
                        "network namespaces are not usable here ({e:#}); they need root, `ip` \
                         (iproute2) and `iptables`"
                    )
                })
            })
            .clone()
    }

    /// Removes namespaces and bridges left by test processes that no longer exist.
    fn remove_stale() {
        let Ok(list) = run(&["ip", "netns", "list"]) else {
            return;
        };
        for line in list.lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if let Some(rest) = name.strip_prefix(NS_PREFIX)
                && let Some(pid) = rest.split('-').next()
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                tracing::info!(
                    namespace = name,
                    "removing a namespace left by a dead test run"
                );
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
        let Ok(links) = run(&["ip", "-o", "link", "show", "type", "bridge"]) else {
            return;
        };
        for line in links.lines() {
            let Some(name) = line.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if let Some(hex) = name.strip_prefix("stb")
                && hex.len() > 1
                && let Ok(pid) = u32::from_str_radix(&hex[..hex.len() - 1], 16)
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                tracing::info!(bridge = name, "removing a bridge left by a dead test run");
                let _ = run(&["ip", "link", "del", name]);
            }
        }
    }

    /// Creates a bridge on a /24 of 10.213.x.0 not in use on this machine.
    pub fn create() -> anyhow::Result<Self> {
        Self::available().map_err(anyhow::Error::msg)?;
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        // Bridge names are at most 15 bytes: stb + pid in hex (≤ 6) + one hex digit.
        let bridge = format!("stb{pid:x}{:x}", n % 16);
        let used = run(&["ip", "-4", "-o", "addr", "show"])?;
        let third = (0..250u32)
            .map(|i| ((pid.wrapping_mul(31) + n * 7 + i) % 250) as u8 + 1)
            .find(|third| !used.contains(&format!("10.213.{third}.")))
            .context("no free 10.213.x.0/24 for a test bridge")?;
        let prefix = [10, 213, third];
        let net = Self {
            bridge,
            prefix,
            tag: format!("{pid}-{n}"),
            namespaces: Vec::new(),
            next_host: 2,
            next_ns: 100,
        };
        run(&["ip", "link", "add", &net.bridge, "type", "bridge"])?;
        // A bridge takes the lowest MAC address of its ports unless given one: adding a
        // broker's veth could then change it, and every namespace's ARP entry for the bridge's
        // addresses would point at a dead MAC for a minute (found by the long run: a broker
        // added by a scale-out was unreachable for 80 s). A fixed, locally administered
        // address never changes.
        let [a, b, c, d] = (pid.wrapping_mul(16) + n % 16).to_be_bytes();
        run(&[
            "ip",
            "link",
            "set",
            "dev",
            &net.bridge,
            "address",
            &format!("02:53:{a:02x}:{b:02x}:{c:02x}:{d:02x}"),
        ])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.ip(1)),
            "dev",
            &net.bridge,
        ])?;
        run(&["ip", "link", "set", &net.bridge, "up"])?;
        Ok(net)
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], self.prefix[2], host)
    }

    /// A new address on the bridge, for a service in the host's namespace (etcd, a storage
    /// node) that namespaced brokers must reach.
    pub fn service_ip(&mut self) -> anyhow::Result<Ipv4Addr> {
        if self.next_host >= 100 {
            bail!("out of service addresses on {}", self.bridge);
        }
        let ip = self.ip(self.next_host);
        self.next_host += 1;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            &self.bridge,
        ])?;
        Ok(ip)
    }

    /// A new namespace joined to the bridge; its name and address.
    pub fn namespace(&mut self) -> anyhow::Result<(String, Ipv4Addr)> {
        if self.next_ns >= 250 {
            bail!("out of namespace addresses on {}", self.bridge);
        }
        let host = self.next_ns;
        self.next_ns += 1;
        let name = format!("{NS_PREFIX}{}-{host}", self.tag);
        let veth = format!("{}v{host}", &self.bridge[..self.bridge.len().min(10)]);
        let ip = self.ip(host);
        run(&["ip", "netns", "add", &name])?;
        self.namespaces.push(name.clone());
        run(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ])?;
        run(&["ip", "link", "set", &veth, "master", &self.bridge, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &name];
            all.extend_from_slice(args);
            run(&all)
        };
        inside(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        inside(&["ip", "link", "set", "eth0", "up"])?;
        inside(&["ip", "link", "set", "lo", "up"])?;
        Ok((name, ip))
    }

    /// Drops every packet between namespace `ns` and `peer`, in both directions.
    pub fn cut(&self, ns: &str, peer: Ipv4Addr) -> anyhow::Result<()> {
        let peer = peer.to_string();
        run(&[
            "ip", "netns", "exec", ns, "iptables", "-I", "OUTPUT", "-d", &peer, "-j", "DROP",
        ])?;
        run(&[
            "ip", "netns", "exec", ns, "iptables", "-I", "INPUT", "-s", &peer, "-j", "DROP",
        ])?;
        Ok(())
    }

    /// Undoes [`Net::cut`].
    pub fn heal(&self, ns: &str, peer: Ipv4Addr) -> anyhow::Result<()> {
        let peer = peer.to_string();
        run(&[
            "ip", "netns", "exec", ns, "iptables", "-D", "OUTPUT", "-d", &peer, "-j", "DROP",
        ])?;
        run(&[
            "ip", "netns", "exec", ns, "iptables", "-D", "INPUT", "-s", &peer, "-j", "DROP",
        ])?;
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of each veth pair, and with it the other end.
        for ns in &self.namespaces {
            if let Err(e) = run(&["ip", "netns", "del", ns]) {
                tracing::warn!(namespace = %ns, error = %e, "cannot delete a test namespace");
            }
        }
        if let Err(e) = run(&["ip", "link", "del", &self.bridge]) {
            tracing::warn!(bridge = %self.bridge, error = %e, "cannot delete a test bridge");
        }
    }
}
