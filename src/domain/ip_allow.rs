//! A key's allowed client addresses: single IPs and CIDR ranges, IPv4 and IPv6.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpAllowList(Vec<IpNet>);

/// Every entry of a list that is not an address or a range, in the order typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BadIpRange(pub Vec<String>);

impl std::fmt::Display for BadIpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted: Vec<String> = self.0.iter().map(|bad| format!("'{bad}'")).collect();
        let verb = if quoted.len() == 1 {
            "is not an IP address or CIDR range"
        } else {
            "are not IP addresses or CIDR ranges"
        };
        write!(
            f,
            "{} {verb} (e.g. 10.0.0.0/8 or 203.0.113.7)",
            quoted.join(", ")
        )
    }
}

/// One address (`203.0.113.7`) or CIDR range (`10.0.0.0/8`, host bits cleared), IPv4 or IPv6.
pub fn parse_range(item: &str) -> Option<IpNet> {
    match IpNet::from_str(item) {
        Ok(net) => Some(net.trunc()),
        Err(_) => IpAddr::from_str(item).ok().map(IpNet::from),
    }
}

impl IpAllowList {
    /// Parses a comma- or newline-separated list. An empty list allows every address. Every
    /// bad entry is named, not only the first.
    pub fn parse(text: &str) -> Result<IpAllowList, BadIpRange> {
        let mut nets = Vec::new();
        let mut bad = Vec::new();
        for item in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let Some(net) = parse_range(item) else {
                bad.push(item.to_string());
                continue;
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        if bad.is_empty() {
            Ok(IpAllowList(nets))
        } else {
            Err(BadIpRange(bad))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        // An IPv4 client may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The canonical comma-separated form stored in the database.
    pub fn to_list_string(&self) -> String {
        self.0
            .iter()
            .map(|n| {
                if n.prefix_len() == n.max_prefix_len() {
                    n.addr().to_string()
                } else {
                    n.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_addresses_in_ranges_only() {
        let list = IpAllowList::parse("10.0.0.0/8, 203.0.113.7\n2001:db8::/32").unwrap();
        assert!(list.allows("10.1.2.3".parse().unwrap()));
        assert!(list.allows("203.0.113.7".parse().unwrap()));
        assert!(!list.allows("203.0.113.8".parse().unwrap()));
        assert!(list.allows("2001:db8::1".parse().unwrap()));
        assert!(list.allows("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!list.allows("127.0.0.1".parse().unwrap()));
        assert_eq!(
            list.to_list_string(),
            "10.0.0.0/8,203.0.113.7,2001:db8::/32"
        );
    }

    #[test]
    fn empty_list_allows_all_and_bad_entries_are_named() {
        assert!(
            IpAllowList::parse("")
                .unwrap()
                .allows("1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            IpAllowList::parse("10.0.0.0/8,nonsense"),
            Err(BadIpRange(vec!["nonsense".into()]))
        );
        assert_eq!(
            IpAllowList::parse("10.0.0.300, 10.0.0.0/8\n::1/200, 203.0.113.7, x"),
            Err(BadIpRange(vec![
                "10.0.0.300".into(),
                "::1/200".into(),
                "x".into()
            ]))
        );
        // Host bits are cleared so the stored form is canonical.
        assert_eq!(
            IpAllowList::parse("10.1.2.3/8").unwrap().to_list_string(),
            "10.0.0.0/8"
        );
    }
}
