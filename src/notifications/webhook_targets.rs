//! Where webhooks may go. An operator or partner key chooses the URL and this server makes
//! the request: unchecked, a key could make Surclass call into its own network (a database
//! port, a cloud metadata address) and read the answer in the delivery log. So receivers
//! must be on public addresses, unless the process is started to allow private ones (a
//! receiver on the developer's machine or the local network).
//!
//! A URL is checked when registered (an address, or a local name such as `localhost`) and
//! again at every delivery, where a name is resolved and only its public addresses are used:
//! what a name points to can change after registration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The rule for webhook receivers, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookTargets {
    allow_private: bool,
}

impl WebhookTargets {
    /// Public addresses only: the production rule.
    pub const PUBLIC_ONLY: Self = Self {
        allow_private: false,
    };
    /// Any address, loopback and private ones included (`--webhooks-to-private-addresses`).
    pub const ANY: Self = Self {
        allow_private: true,
    };

    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Why `url` may not receive webhooks, if it may not; `url` is already known to be an
    /// absolute http(s) URL. Names other than local ones are checked at delivery.
    pub fn refusal(self, url: &str) -> Option<String> {
        if self.allow_private {
            return None;
        }
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Some("is not a valid URL".to_owned());
        };
        let private = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => is_local_name(name),
            None => return Some("has no host".to_owned()),
        };
        private.then(|| {
            "points to a loopback, private or link-local address; webhooks go to public \
             addresses only (a server started with --webhooks-to-private-addresses allows them)"
                .to_owned()
        })
    }

    /// The name resolver for webhook requests: `None` (the system's) when private addresses
    /// are allowed, else one that drops every non-public address a name resolves to.
    pub fn resolver(self) -> Option<Arc<PublicAddressesOnly>> {
        (!self.allow_private).then(|| Arc::new(PublicAddressesOnly))
    }
}

/// `localhost` and its subdomains resolve to loopback by definition (RFC 6761).
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `ip` is a globally reachable unicast address: not loopback, private, link-local,
/// shared (carrier NAT), unspecified, broadcast, multicast or documentation space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 one stands for, where a gateway or the host would reach it:
/// mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), translated (`::ffff:0:a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002:AABB:CCDD::/48`). The local NAT64 prefix `64:ff9b:1::/48` is not public at all.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        // IPv4-translated (SIIT, RFC 2765).
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let this_network = a == 0;
    let shared = a == 100 && (64..128).contains(&b);
    // IETF protocol assignments, benchmarking, and the reserved 240/4.
    let special = (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240;
    !(this_network
        || shared
        || special
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation())
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let documentation = s[0] == 0x2001 && s[1] == 0x0db8;
    // RFC 8215: translators of one network, with the IPv4 address anywhere in the suffix.
    let local_nat64 = s[..3] == [0x64, 0xff9b, 1];
    // IETF protocol assignments (2001::/23, RFC 6890), Teredo tunnels (2001::/32) among them,
    // whose far end an address does not show; only the few globally reachable ones kept.
    let globally_reachable_assignment = matches!(s, [0x2001, 1, 0, 0, 0, 0, 0, 1 | 2])
        || matches!(s, [0x2001, 3, ..])
        || matches!(s, [0x2001, 4, 0x112, ..])
        || matches!(s, [0x2001, 0x20..=0x2f, ..]);
    let protocol_assignment = s[0] == 0x2001 && s[1] < 0x200 && !globally_reachable_assignment;
    !(local_nat64
        || protocol_assignment
        || ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || documentation)
}

/// Resolves with the system, then keeps only public addresses; a name with none left is an
/// error the delivery log shows.
pub struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address; webhooks go to public addresses only"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "::ffff:0:a00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a00:0:100:808:808",
            "2002:7f00:1::",
            "192.0.0.170",
            "198.18.0.1",
            "240.0.0.1",
            // Teredo, whatever the server and client it names; benchmarking space.
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:0:a00:1::1",
            "2001:2::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "192.0.1.1",
            "2001:4860:4860::8888",
            "2001:1::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_to_local_places_are_refused_unless_allowed() {
        let public_only = WebhookTargets::PUBLIC_ONLY;
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "https://api.localhost./hook",
            "http://[::1]:9000/",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f000001/",
        ] {
            assert!(public_only.refusal(url).is_some(), "{url}");
            assert!(WebhookTargets::ANY.refusal(url).is_none(), "{url}");
        }
        for url in ["https://partner.example/hooks", "http://8.8.8.8/hook"] {
            assert!(public_only.refusal(url).is_none(), "{url}");
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_not_resolved() {
        use reqwest::dns::Resolve;
        let refused = PublicAddressesOnly
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost has no public address");
        assert!(
            refused.to_string().contains("no public address"),
            "{refused}"
        );
    }
}
