//! The address a request comes from, for per-address limits (sign-in floods). Behind a reverse
//! proxy every request arrives from the proxy, so one flood would lock every traveller out;
//! when the TCP peer is a proxy the operator named (`--trusted-proxies`), the client is the
//! nearest address in `X-Forwarded-For` that is not itself a trusted proxy. From anyone else
//! the header is ignored: a client can write any address into it.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::{IpAddr, SocketAddr};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: `forwarded_for` are the `X-Forwarded-For` values in order,
    /// each proxy having appended the address it was reached from, so they are read from the
    /// right and the first address not trusted is the client. A hop that is not an address
    /// stops the walk at the last one read.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop.trim()) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// `203.0.113.7`, `2001:db8::1`, or either with a port (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The requesting client's address as text; empty when the connection has none (tests that
/// call handlers without a socket).
pub struct ClientAddress(pub String);

impl FromRequest for ClientAddress {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
            return ready(Ok(Self(String::new())));
        };
        let client = match req.app_data::<web::Data<TrustedProxies>>() {
            Some(proxies) => proxies.client(
                peer,
                req.headers()
                    .get_all("x-forwarded-for")
                    .filter_map(|v| v.to_str().ok()),
            ),
            None => peer,
        };
        ready(Ok(Self(client.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_trusted_proxy;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            nets.iter()
                .map(|n| parse_trusted_proxy(n).unwrap())
                .collect(),
        )
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("127.0.0.1"), ["203.0.113.7"].into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_client_that_is_not_a_trusted_proxy_cannot_choose_its_address() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(ip("198.51.100.9"), ["203.0.113.7"].into_iter()),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        // The client wrote a fake first entry; the edge proxy appended the real address.
        let header = ["1.2.3.4, 203.0.113.7, 10.1.1.1"];
        assert_eq!(
            p.client(ip("192.0.2.1"), header.into_iter()),
            ip("203.0.113.7")
        );
        // Several headers are one list, in order; ports and IPv6 are understood.
        let headers = ["1.2.3.4", "[2001:db8::5]:4711, 10.0.0.2:80"];
        assert_eq!(
            p.client(ip("10.0.0.3"), headers.into_iter()),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn a_missing_or_broken_header_leaves_the_proxy_as_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(p.client(ip("10.0.0.3"), std::iter::empty()), ip("10.0.0.3"));
        assert_eq!(
            p.client(ip("10.0.0.3"), ["unknown"].into_iter()),
            ip("10.0.0.3")
        );
        assert_eq!(
            p.client(ip("10.0.0.3"), ["203.0.113.7, junk"].into_iter()),
            ip("10.0.0.3")
        );
    }
}
