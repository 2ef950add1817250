//! Where a callback may go: the defence against server-side request forgery
//! (Judge0's CVE-2024-29021 came through its `callback_url`).
//!
//! A callback URL must be `http://` with no credentials, and every address
//! its host resolves to must be a public unicast address: loopback, private
//! (10/8, 172.16/12, 192.168/16, 100.64/10), link-local (169.254/16 — cloud
//! metadata — and fe80::/10), unspecified, multicast, documentation,
//! unique-local (fc00::/7) and the IPv6 forms that embed an IPv4 address
//! (v4-mapped, NAT64, 6to4) of such an address are refused. The sender then
//! connects to exactly the addresses checked here (no second DNS lookup that
//! could answer differently), follows no redirect without checking its
//! target the same way, and is bounded in time. Operators may allow named
//! hosts or addresses that would be refused (`CALLBACK_ALLOWED_HOSTS`).
//!
//! `https://` callbacks are refused: this build carries no TLS client.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use reqwest::Url;

/// How long resolving a callback's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A callback target that passed the checks: the URL and the addresses to
/// connect to.
pub struct Target {
    pub url: Url,
    pub host: String,
    pub addresses: Vec<SocketAddr>,
}

/// Checks `raw` (resolving its host) without keeping the result.
pub async fn check_url(raw: &str, allowed: &[String]) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|_| "is not a valid URL".to_owned())?;
    resolve(url, allowed).await.map(|_| ())
}

/// Resolves and checks a callback URL.
pub async fn resolve(url: Url, allowed: &[String]) -> Result<Target, String> {
    if url.scheme() != "http" {
        return Err("must be an http:// URL (this server sends no https callbacks)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = url
        .host_str()
        .ok_or_else(|| "has no host".to_owned())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| format!("`{host}` did not resolve in time"))?
        .map_err(|_| format!("`{host}` does not resolve"))?
        .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("`{host}` does not resolve"));
    }
    let host_allowed = allowed.contains(&host);
    for address in &addresses {
        let ip = address.ip();
        if !host_allowed
            && !allowed.iter().any(|a| a.parse::<IpAddr>().ok() == Some(ip))
            && let Some(kind) = forbidden(ip)
        {
            return Err(format!("is not allowed: `{host}` is {kind} address ({ip})"));
        }
    }
    Ok(Target {
        url,
        host,
        addresses,
    })
}

/// Why a callback may not go to `ip`, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "a loopback",
        _ if ip.is_unspecified() || a == 0 => "an unspecified",
        _ if ip.is_private() => "a private",
        _ if ip.is_link_local() => "a link-local (or metadata)",
        (100, 64..=127, _) => "a shared (carrier-grade NAT)",
        (192, 0, 0) => "an IETF-reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation",
        (198, 18..=19, _) => "a benchmarking",
        _ if ip.is_multicast() => "a multicast",
        _ if a >= 240 => "a reserved (or broadcast)",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_loopback() {
        return Some("a loopback");
    }
    if ip.is_unspecified() {
        return Some("an unspecified");
    }
    // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d).
    if let Some(v4) = ip.to_ipv4() {
        return forbidden_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments[0] {
        // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
        0x64 if segments[1] == 0xff9b => forbidden_v4(embedded(segments[6], segments[7])),
        // 6to4 (2002::/16) carries one in bits 16–48.
        0x2002 => forbidden_v4(embedded(segments[1], segments[2])),
        // Teredo tunnels and documentation.
        0x2001 if segments[1] == 0 => Some("a Teredo"),
        0x2001 if segments[1] == 0x0db8 => Some("a documentation"),
        s if s & 0xfe00 == 0xfc00 => Some("a unique-local"),
        s if s & 0xffc0 == 0xfe80 => Some("a link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("a site-local"),
        s if s & 0xff00 == 0xff00 => Some("a multicast"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        forbidden(ip.parse().expect("an address")).is_some()
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
    }
}
