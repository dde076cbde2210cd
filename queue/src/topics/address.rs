//! Which addresses a `public_only` subscription may be delivered to: no
//! loopback, private, link-local or other reserved one, whether named in
//! the URL or reached through DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is a public unicast address: not loopback, private,
/// link-local, shared (CGNAT), benchmarking, documentation, multicast,
/// unspecified or reserved, nor an IPv6 address that carries or reaches an
/// IPv4 one (NAT64, 6to4, IPv4-compatible, -mapped) or is site-local.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || first == 0
        || first >= 240
        || (first == 100 && (second & 0xc0) == 64)
        || (first == 198 && (second & 0xfe) == 18))
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = a.segments();
    // The gateways these reach, and where they lead, are the network's own:
    // a NAT64 prefix or a 6to4 relay can hand a request to any IPv4
    // address, a private one included.
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && (s[2] == 1 || s[2..6] == [0; 4]);
    let six_to_four = s[0] == 0x2002;
    let ipv4_compatible = s[..6] == [0; 6];
    let site_local = (s[0] & 0xffc0) == 0xfec0;
    !(a.is_multicast()
        || ipv4_compatible
        || nat64
        || six_to_four
        || site_local
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8))
}

/// Whether an endpoint's host can be public: not a non-public address nor
/// `localhost` (names are checked again when they are resolved).
pub fn public_host(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_public(ip.into()),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d != "localhost" && !d.ends_with(".localhost")
        }
        None => false,
    }
}

/// A resolver that keeps public addresses only, so a name cannot lead a
/// delivery into the server's own network.
pub(crate) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{} resolves to no public address", name.as_str()).into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What a pusher's slots and breakers know an endpoint by: its scheme, host
/// and port. The path and query are left out, as anyone may vary them to
/// look like many endpoints.
pub(crate) fn endpoint_key(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(url) => format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_hosts_pass() {
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:192.168.1.1]/",
            "http://100.64.0.1/",
            "http://localhost:8081/",
            "http://a.localhost/",
            "http://0.0.0.0/",
            "http://198.18.0.1/",
            "http://198.19.255.255/",
            "http://[64:ff9b::a00:1]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[2002:a00:1::]/",
            "http://[::10.0.0.1]/",
            "http://[::8.8.8.8]/",
            "http://[fec0::1]/",
            "http://[feff::1]/",
        ] {
            assert!(!public_host(url), "{url}");
        }
        for url in [
            "https://example.com/hook",
            "http://93.184.216.34/",
            "http://[2606:4700::1]/",
            "http://198.20.0.1/",
            "http://198.17.255.255/",
            "http://[2003::1]/",
            "http://[64:ff9c::1]/",
        ] {
            assert!(public_host(url), "{url}");
        }
    }

    #[test]
    fn endpoints_that_differ_only_in_path_or_query_are_one() {
        let key = endpoint_key("https://hooks.example/a?x=1");
        assert_eq!(key, endpoint_key("https://hooks.example:443/b"));
        assert_ne!(key, endpoint_key("https://hooks.example:8443/a"));
        assert_ne!(key, endpoint_key("http://hooks.example/a"));
    }
}
