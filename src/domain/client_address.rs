//! Who the client is when proxies stand in front: the rule behind every per-address limit and
//! every key's IP allow-list.
//!
//! Each proxy appends the address it received the request from to a header, so the header's
//! right end was written by the nearest proxy and its left end by whoever sent the request,
//! possibly the client itself. The walk starts at the socket's peer and goes right to left
//! while the address in hand is a trusted proxy's: the first address that is not one is the
//! client. An entry that is not an address (`unknown`, an obfuscated `_name`, garbage) ends the
//! walk at the proxy that wrote it, so the answer is that proxy's address, never something a
//! client typed. When every entry is a trusted proxy, the leftmost is the client.
//!
//! `Forwarded` (RFC 7239) is read when the request has one, else `X-Forwarded-For`; the two
//! are never mixed. Several lines of a header are one list, in order. IPv4-mapped IPv6
//! addresses (`::ffff:192.0.2.1`) are IPv4 addresses, in the comparison and in the answer.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

use super::ip_allow::{BadIpRange, parse_range};

/// The proxies whose forwarding headers are believed (`--trusted-proxies`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses and CIDR ranges; the error names every entry
    /// that is neither.
    pub fn parse(text: &str) -> Result<TrustedProxies, BadIpRange> {
        let mut ranges = TrustedProxies::default();
        let mut bad = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match parse_range(item) {
                Some(range) => ranges.add(range),
                None => bad.push(item.to_string()),
            }
        }
        if bad.is_empty() {
            Ok(ranges)
        } else {
            Err(BadIpRange(bad))
        }
    }

    /// This machine: what `--trust-forwarded-for` stands for (a proxy on the same host).
    pub fn loopback() -> TrustedProxies {
        TrustedProxies(vec![
            IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
            IpNet::new_assert(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        ])
    }

    /// Both lists.
    pub fn with(mut self, other: &TrustedProxies) -> TrustedProxies {
        for range in &other.0 {
            self.add(*range);
        }
        self
    }

    fn add(&mut self, range: IpNet) {
        if !self.0.contains(&range) {
            self.0.push(range);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|range| range.contains(&ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = BadIpRange;

    fn from_str(text: &str) -> Result<TrustedProxies, BadIpRange> {
        TrustedProxies::parse(text)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

/// The client's address, from the socket's `peer` and the request's header lines (their raw
/// bytes, in the order they came): `forwarded` are its `Forwarded` lines, `x_forwarded_for`
/// its `X-Forwarded-For` lines. Headers are read only when the peer is a trusted proxy.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a [u8]>,
    x_forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let mut forwarded = forwarded.peekable();
    if forwarded.peek().is_some() {
        walk(
            peer,
            forwarded
                .rev()
                .flat_map(|line| forwarded_hops(line).into_iter().rev()),
            trusted,
        )
    } else {
        walk(
            peer,
            x_forwarded_for.rev().flat_map(|line| {
                line.rsplit(|&b| b == b',')
                    .filter(|entry| !entry.trim_ascii().is_empty())
                    .map(|entry| match std::str::from_utf8(entry) {
                        Ok(text) => node(text.trim()),
                        Err(_) => Hop::NotAnAddress,
                    })
            }),
            trusted,
        )
    }
}

/// One entry of a forwarding header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    Address(IpAddr),
    /// `unknown`, an obfuscated identifier, or anything else that names no address.
    NotAnAddress,
}

/// Steps from the trusted `peer` through `hops` (rightmost first) while they are trusted.
fn walk(peer: IpAddr, hops: impl Iterator<Item = Hop>, trusted: &TrustedProxies) -> IpAddr {
    let mut nearest = peer;
    for hop in hops {
        match hop {
            Hop::Address(ip) if trusted.contains(ip) => nearest = ip,
            Hop::Address(ip) => return ip,
            // The trusted proxy in hand wrote an entry that names no one: it is as far as
            // anything is known.
            Hop::NotAnAddress => return nearest,
        }
    }
    nearest
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A node as proxies write it: `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`,
/// `[2001:db8::1]:443`, or a bare `2001:db8::1`. Anything else names no address.
fn node(text: &str) -> Hop {
    let address = if let Some(rest) = text.strip_prefix('[') {
        rest.split_once(']').and_then(|(inside, after)| {
            let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
            port_ok.then(|| inside.parse::<Ipv6Addr>().ok().map(IpAddr::V6))?
        })
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        Some(ip)
    } else {
        text.split_once(':')
            .filter(|(_, port)| is_port(port))
            .and_then(|(host, _)| host.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
    };
    address.map_or(Hop::NotAnAddress, |ip| Hop::Address(canonical(ip)))
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The `for=` of each element of one `Forwarded` line, in order. An element without exactly
/// one readable `for=` names no address.
fn forwarded_hops(line: &[u8]) -> Vec<Hop> {
    let Ok(text) = std::str::from_utf8(line) else {
        return vec![Hop::NotAnAddress];
    };
    split_elements(text)
        .into_iter()
        .filter(|element| !element.trim().is_empty())
        .map(element_hop)
        .collect()
}

/// A line's elements: split at commas outside quoted strings. A quote left open does not
/// swallow the rest of the line (which later proxies may have appended to): from the element
/// that opened it, every comma separates.
fn split_elements(text: &str) -> Vec<&str> {
    let mut elements = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ',' {
            elements.push(&text[start..i]);
            start = i + 1;
        }
    }
    if quoted {
        elements.extend(text[start..].split(','));
    } else {
        elements.push(&text[start..]);
    }
    elements
}

/// The `for=` of one element (`for=192.0.2.60;proto=http;by=203.0.113.43`); parameter names
/// in any case, values as tokens or quoted strings.
fn element_hop(element: &str) -> Hop {
    let mut rest = element;
    let mut found = None;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some((name, after)) = rest.split_once('=') else {
            return Hop::NotAnAddress;
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Hop::NotAnAddress;
        }
        let after = after.trim_start();
        let (value, remaining): (Cow<'_, str>, &str) = if let Some(quoted) = after.strip_prefix('"')
        {
            match quoted_string(quoted) {
                Some(parsed) => parsed,
                None => return Hop::NotAnAddress,
            }
        } else {
            let end = after.find(';').unwrap_or(after.len());
            let value = after[..end].trim();
            if value.is_empty() || !value.bytes().all(is_token_byte) {
                return Hop::NotAnAddress;
            }
            (Cow::Borrowed(value), &after[end..])
        };
        let remaining = remaining.trim_start();
        rest = match remaining.strip_prefix(';') {
            Some(next) => next,
            None if remaining.is_empty() => remaining,
            None => return Hop::NotAnAddress,
        };
        if name.eq_ignore_ascii_case("for") {
            if found.is_some() {
                // Two `for=` in one element: which one the proxy meant is unknowable.
                return Hop::NotAnAddress;
            }
            found = Some(node(&value));
        }
    }
    found.unwrap_or(Hop::NotAnAddress)
}

/// A quoted string's text (after its opening quote) and what follows its closing quote; None
/// when it never closes.
fn quoted_string(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut value = String::new();
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => {
                value.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => return Some((Cow::Owned(value), &text[i + 1..])),
            _ => value.push(c),
        }
    }
    None
}

/// RFC 7230's `tchar`, plus `:` `[` `]` that proxies write unquoted in practice.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:[]".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(text: &str) -> TrustedProxies {
        TrustedProxies::parse(text).unwrap()
    }

    /// The client as seen from `peer` with these header lines.
    fn client(peer: &str, forwarded: &[&str], x_forwarded_for: &[&str], trusted: &str) -> IpAddr {
        client_address(
            ip(peer),
            forwarded.iter().map(|line| line.as_bytes()),
            x_forwarded_for.iter().map(|line| line.as_bytes()),
            &proxies(trusted),
        )
    }

    const LAN: &str = "10.0.0.0/8";

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        assert_eq!(
            client("203.0.113.9", &[], &["198.51.100.1"], ""),
            ip("203.0.113.9")
        );
        assert_eq!(
            client("203.0.113.9", &[], &["198.51.100.1"], LAN),
            ip("203.0.113.9")
        );
        assert_eq!(
            client("203.0.113.9", &["for=198.51.100.1"], &[], LAN),
            ip("203.0.113.9")
        );
        // A client claiming to be a trusted proxy changes nothing either.
        assert_eq!(
            client("203.0.113.9", &[], &["10.0.0.1"], LAN),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_first_untrusted_address_from_the_right_is_the_client() {
        // The client wrote the first two entries; the proxies the rest.
        assert_eq!(
            client(
                "10.0.0.2",
                &[],
                &["1.1.1.1, 2.2.2.2, 198.51.100.7, 10.0.0.1"],
                LAN
            ),
            ip("198.51.100.7")
        );
        // One proxy, no header from the client.
        assert_eq!(
            client("10.0.0.1", &[], &["198.51.100.7"], LAN),
            ip("198.51.100.7")
        );
        // Behind a trusted proxy that sent no header: the proxy itself.
        assert_eq!(client("10.0.0.1", &[], &[], LAN), ip("10.0.0.1"));
    }

    #[test]
    fn spoofed_entries_left_of_the_real_client_are_never_used() {
        for spoof in [
            "127.0.0.1",
            "10.0.0.5",
            "8.8.8.8",
            "::1",
            "unknown",
            "_hidden",
            "x",
        ] {
            let header = format!("{spoof}, 198.51.100.7");
            assert_eq!(
                client("10.0.0.1", &[], &[&header], LAN),
                ip("198.51.100.7"),
                "{header}"
            );
            let forwarded = format!("for=\"{spoof}\", for=198.51.100.7");
            assert_eq!(
                client("10.0.0.1", &[&forwarded], &[], LAN),
                ip("198.51.100.7"),
                "{forwarded}"
            );
        }
        // A client sending the header as a separate line comes first too.
        assert_eq!(
            client("10.0.0.1", &[], &["8.8.8.8", "198.51.100.7"], LAN),
            ip("198.51.100.7")
        );
        // Commas, spaces and ports that the client adds do not shift the proxies' entries.
        assert_eq!(
            client(
                "10.0.0.1",
                &[],
                &["8.8.8.8,,, ,8.8.4.4:80 , 198.51.100.7"],
                LAN
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn an_entry_naming_no_address_ends_the_walk_at_the_proxy_that_wrote_it() {
        // 10.0.0.1 (the peer) wrote "unknown": the client is the peer.
        assert_eq!(
            client("10.0.0.1", &[], &["8.8.8.8, unknown"], LAN),
            ip("10.0.0.1")
        );
        // 10.0.0.3 wrote "garbage": it is the client as far as anyone knows.
        assert_eq!(
            client("10.0.0.1", &[], &["8.8.8.8, garbage, 10.0.0.3"], LAN),
            ip("10.0.0.3")
        );
        assert_eq!(
            client(
                "10.0.0.1",
                &["for=8.8.8.8, for=_hidden, for=10.0.0.3"],
                &[],
                LAN
            ),
            ip("10.0.0.3")
        );
        assert_eq!(
            client("10.0.0.1", &["for=8.8.8.8, for=UNKNOWN"], &[], LAN),
            ip("10.0.0.1")
        );
        // Not text at all.
        assert_eq!(
            client_address(
                ip("10.0.0.1"),
                std::iter::empty(),
                [b"8.8.8.8, \xff\xfe".as_slice()].into_iter(),
                &proxies(LAN)
            ),
            ip("10.0.0.1")
        );
        // Entries that look almost like addresses.
        for bad in [
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.4:",
            "1.2.3.4:123456",
            "[::1",
            "[::1]x",
            "::1]",
        ] {
            let header = format!("8.8.8.8, {bad}");
            assert_eq!(
                client("10.0.0.1", &[], &[&header], LAN),
                ip("10.0.0.1"),
                "{bad}"
            );
        }
    }

    #[test]
    fn when_every_entry_is_trusted_the_leftmost_is_the_client() {
        assert_eq!(
            client("10.0.0.1", &[], &["10.0.0.9, 10.0.0.8"], LAN),
            ip("10.0.0.9")
        );
        assert_eq!(
            client("10.0.0.1", &["for=10.0.0.9, for=10.0.0.8"], &[], LAN),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn forwarded_wins_and_the_headers_are_never_mixed() {
        assert_eq!(
            client("10.0.0.1", &["for=198.51.100.7"], &["203.0.113.1"], LAN),
            ip("198.51.100.7")
        );
        // Forwarded present but naming only proxies: its leftmost, not X-Forwarded-For's.
        assert_eq!(
            client("10.0.0.1", &["for=10.0.0.9"], &["203.0.113.1"], LAN),
            ip("10.0.0.9")
        );
        // An empty Forwarded still means X-Forwarded-For is not read.
        assert_eq!(
            client("10.0.0.1", &[""], &["203.0.113.1"], LAN),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn forwarded_follows_rfc_7239() {
        let one = |line: &str| client("10.0.0.1", &[line], &[], LAN);
        assert_eq!(
            one("for=192.0.2.60;proto=http;by=203.0.113.43"),
            ip("192.0.2.60")
        );
        assert_eq!(
            one("For=\"[2001:db8:cafe::17]:4711\""),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(one("FOR=\"192.0.2.43:47011\""), ip("192.0.2.43"));
        assert_eq!(
            one("proto=https; for = \"[2001:db8::1]\" ; by=x"),
            ip("2001:db8::1")
        );
        assert_eq!(
            one("for=192.0.2.43, for=198.51.100.17"),
            ip("198.51.100.17")
        );
        // A quoted string may hold a comma and escapes; it is one value.
        assert_eq!(
            one("for=198.51.100.17, for=\"_a,b\\\"c\", for=10.0.0.3"),
            ip("10.0.0.3")
        );
        // An element with no for=, or two, names no one.
        assert_eq!(one("for=198.51.100.17, proto=https"), ip("10.0.0.1"));
        assert_eq!(
            one("for=198.51.100.17, for=1.1.1.1;for=2.2.2.2"),
            ip("10.0.0.1")
        );
        // Malformed elements: stray text, a token with a quote, an open quote.
        assert_eq!(one("for=198.51.100.17, for=1.1.1.1 x"), ip("10.0.0.1"));
        assert_eq!(one("for=198.51.100.17, for=1.1\"1.1"), ip("10.0.0.1"));
        assert_eq!(one("for=198.51.100.17, for=\"1.1.1.1"), ip("10.0.0.1"));
        // A quote the client leaves open does not swallow what the proxy appended.
        assert_eq!(one("for=\"8.8.8.8, for=198.51.100.17"), ip("198.51.100.17"));
        assert_eq!(one("for=\"8.8.8.8, for=10.0.0.3"), ip("10.0.0.3"));
    }

    #[test]
    fn several_lines_are_one_list_in_order() {
        assert_eq!(
            client(
                "10.0.0.1",
                &[],
                &["8.8.8.8", "198.51.100.7, 10.0.0.3", "10.0.0.2"],
                LAN
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client(
                "10.0.0.1",
                &["for=8.8.8.8", "for=198.51.100.7", "for=10.0.0.3"],
                &[],
                LAN
            ),
            ip("198.51.100.7")
        );
        // An open quote on one line stays on that line.
        assert_eq!(
            client("10.0.0.1", &["for=\"8.8.8.8", "for=198.51.100.7"], &[], LAN),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        // The peer, arriving on a dual-stack socket.
        assert_eq!(
            client("::ffff:10.0.0.1", &[], &["198.51.100.7"], LAN),
            ip("198.51.100.7")
        );
        assert_eq!(
            client("::ffff:203.0.113.9", &[], &[], ""),
            ip("203.0.113.9")
        );
        // In the header: trusted by an IPv4 range, and answered as IPv4.
        assert_eq!(
            client(
                "10.0.0.1",
                &[],
                &["::ffff:198.51.100.7, ::ffff:10.0.0.3"],
                LAN
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client("10.0.0.1", &["for=\"[::ffff:198.51.100.7]:80\""], &[], LAN),
            ip("198.51.100.7")
        );
        // An IPv6 range trusts IPv6 peers.
        assert_eq!(
            client(
                "2001:db8::5",
                &[],
                &["2001:db8:ffff::1, 2001:db8::6"],
                "2001:db8::/64"
            ),
            ip("2001:db8:ffff::1")
        );
    }

    #[test]
    fn ports_and_brackets_in_x_forwarded_for() {
        assert_eq!(
            client("10.0.0.1", &[], &["198.51.100.7:5000"], LAN),
            ip("198.51.100.7")
        );
        assert_eq!(
            client("10.0.0.1", &[], &["[2001:db8::7]:443"], LAN),
            ip("2001:db8::7")
        );
        assert_eq!(
            client("10.0.0.1", &[], &["2001:db8::7"], LAN),
            ip("2001:db8::7")
        );
        assert_eq!(
            client("10.0.0.1", &[], &["[2001:db8::7]"], LAN),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn the_trusted_list_parses_once_and_names_what_is_wrong() {
        let list = proxies("10.0.0.0/8, 192.168.1.1 ,2001:db8::/32");
        assert!(list.contains(ip("10.9.9.9")));
        assert!(list.contains(ip("192.168.1.1")));
        assert!(!list.contains(ip("192.168.1.2")));
        assert!(list.contains(ip("2001:db8::1")));
        assert!(list.contains(ip("::ffff:10.1.1.1")));
        assert_eq!(list.to_string(), "10.0.0.0/8,192.168.1.1/32,2001:db8::/32");
        assert!(proxies("").is_empty());
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8,10.0.0.0/33"),
            Err(BadIpRange(vec!["10.0.0.0/33".into()]))
        );
        assert_eq!(
            TrustedProxies::parse("proxy.example"),
            Err(BadIpRange(vec!["proxy.example".into()]))
        );
        let loopback = TrustedProxies::loopback();
        assert!(loopback.contains(ip("127.0.0.1")) && loopback.contains(ip("127.9.9.9")));
        assert!(loopback.contains(ip("::1")) && loopback.contains(ip("::ffff:127.0.0.1")));
        assert!(!loopback.contains(ip("10.0.0.1")));
        assert_eq!(loopback.to_string(), "127.0.0.0/8,::1/128");
        let both = list.with(&loopback);
        assert!(both.contains(ip("127.0.0.1")) && both.contains(ip("10.0.0.1")));
    }
}
