//! Who the client is: its IP address, believed from forwarding headers only when the
//! peer is a proxy the operator trusts, and a keyed hash that stands in for it anywhere
//! it would be written down.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

use crate::config::ForwardingHeader;
use crate::domain::Timestamp;
use crate::secret::{SecretError, keyed_hash, random_bytes};

/// Forwarding headers hold one address per hop; more than this is not a real chain.
const MAX_HOPS: usize = 32;

/// The reverse proxies the operator trusts, and the header they write.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    proxies: Vec<IpNet>,
    header: ForwardingHeader,
}

impl TrustedProxies {
    pub fn new(proxies: Vec<IpNet>, header: ForwardingHeader) -> Self {
        Self { proxies, header }
    }

    fn contains(&self, address: IpAddr) -> bool {
        self.proxies.iter().any(|net| net.contains(&address))
    }
}

/// The client's address as far as joinform can tell. Never logged or stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(IpAddr);

impl ClientIp {
    /// The TCP peer, unless it is a trusted proxy: then the right-most address in the
    /// proxies' forwarding header that is not a trusted proxy. A hop that cannot be
    /// read leaves the last trusted hop as the client.
    pub fn of(request: &HttpRequest, trusted: &TrustedProxies) -> Option<Self> {
        let peer = canonical(request.peer_addr()?.ip());
        Some(Self(client_behind(peer, request.headers(), trusted)))
    }

    pub fn from_addr(address: IpAddr) -> Self {
        Self(canonical(address))
    }

    /// The key rate limits count under: the address, or an IPv6 client's /64 network,
    /// since one subscriber usually holds a whole /64.
    pub fn limit_key(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(_) => self.0,
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !(u128::MAX >> 64);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        }
    }
}

fn client_behind(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let hops = match trusted.header {
        ForwardingHeader::XForwardedFor => x_forwarded_for(headers),
        ForwardingHeader::Forwarded => forwarded_for(headers),
    };
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let Some(address) = hop.map(canonical) else {
            // An unreadable or hidden hop ("unknown", "_secret"): what lies further
            // left cannot be traced, so the last trusted hop stands for the client.
            return client;
        };
        client = address;
        if !trusted.contains(address) {
            return address;
        }
    }
    client
}

/// RFC 7239 `for=` values, left to right; `None` for a hop that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then_some(value.trim())
            });
            hops.push(node.and_then(parse_node));
        }
    }
    hops
}

/// `X-Forwarded-For: client, proxy1, proxy2`, over all its header lines.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(|hop| parse_node(hop.trim())).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// An address as a proxy writes it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, possibly in double quotes.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim_matches('"');
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4 clients reaching an IPv6 socket appear as `::ffff:a.b.c.d`; they are IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// Hashes client addresses with a random key that changes every UTC day and lives only
/// in memory: a day's posts from one client can be linked, nothing older can, and the
/// address cannot be recovered from the database.
pub struct ClientHasher {
    current: Mutex<DayKey>,
}

struct DayKey {
    day: u64,
    key: [u8; 32],
}

impl ClientHasher {
    pub fn new() -> Result<Self, SecretError> {
        Self::starting_on(today())
    }

    fn starting_on(day: u64) -> Result<Self, SecretError> {
        Ok(Self {
            current: Mutex::new(DayKey {
                day,
                key: random_bytes()?,
            }),
        })
    }

    /// Hex of the first 16 bytes of HMAC-SHA256(day key, address); `None` only if the
    /// system's random generator fails at the day's rotation.
    pub fn hash(&self, client: ClientIp) -> Option<String> {
        self.hash_on(today(), client)
    }

    /// Replaces a key from an earlier day. Run by the periodic sweep, so that a key
    /// is forgotten within minutes of midnight UTC even when nobody signs up.
    pub fn rotate_if_due(&self) -> Result<(), SecretError> {
        self.key_for(today()).map(|_| ())
    }

    fn hash_on(&self, day: u64, client: ClientIp) -> Option<String> {
        let key = self.key_for(day).ok()?;
        let digest = keyed_hash(&key, client.0.to_string().as_bytes());
        Some(hex::encode(&digest[..16]))
    }

    fn key_for(&self, day: u64) -> Result<[u8; 32], SecretError> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.day != day {
            // The old key is overwritten: yesterday's hashes become unlinkable.
            *current = DayKey {
                day,
                key: random_bytes()?,
            };
        }
        Ok(current.key)
    }

    #[cfg(test)]
    fn held_key(&self) -> (u64, [u8; 32]) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (current.day, current.key)
    }
}

/// Days since the Unix epoch, UTC.
fn today() -> u64 {
    Timestamp::now().unix_millis() / 86_400_000
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted_writing(header: ForwardingHeader) -> TrustedProxies {
        TrustedProxies::new(
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            header,
        )
    }

    fn trusted() -> TrustedProxies {
        trusted_writing(ForwardingHeader::XForwardedFor)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let claims = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            client_behind(ip("198.51.100.1"), &claims, &trusted()),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(
            client_behind(ip("10.0.0.1"), &chain, &trusted()),
            ip("203.0.113.9")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https, for=10.2.2.2",
        )]);
        assert_eq!(
            client_behind(
                ip("::1"),
                &forwarded,
                &trusted_writing(ForwardingHeader::Forwarded)
            ),
            ip("2001:db8::7")
        );
        let with_port = headers(&[("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(
            client_behind(ip("10.0.0.1"), &with_port, &trusted()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn only_the_header_the_proxies_write_is_read() {
        // nginx appends the peer to X-Forwarded-For and passes a client's own
        // Forwarded header on untouched.
        let through_nginx = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=192.0.2.66"),
        ]);
        assert_eq!(
            client_behind(ip("10.0.0.1"), &through_nginx, &trusted()),
            ip("203.0.113.9")
        );
        let only_forwarded = headers(&[("forwarded", "for=192.0.2.66")]);
        assert_eq!(
            client_behind(ip("10.0.0.1"), &only_forwarded, &trusted()),
            ip("10.0.0.1")
        );
        // And the other way round for a proxy that writes Forwarded.
        let through_forwarding_proxy = headers(&[
            ("x-forwarded-for", "192.0.2.66"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            client_behind(
                ip("10.0.0.1"),
                &through_forwarding_proxy,
                &trusted_writing(ForwardingHeader::Forwarded)
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_last_trusted_hop() {
        let chain = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.1.1.1")]);
        assert_eq!(
            client_behind(ip("10.0.0.1"), &chain, &trusted()),
            ip("10.1.1.1")
        );
        let none = headers(&[]);
        assert_eq!(
            client_behind(ip("10.0.0.1"), &none, &trusted()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_is_ipv4() {
        let a = ClientIp::from_addr(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientIp::from_addr(ip("2001:db8:1:2:bbbb::2"));
        assert_eq!(a.limit_key(), b.limit_key());
        assert_eq!(
            ClientIp::from_addr(ip("::ffff:192.0.2.1")).limit_key(),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn the_client_hash_is_stable_within_a_day_and_hides_the_address() {
        let hasher = ClientHasher::new().unwrap();
        let client = ClientIp::from_addr(ip("192.0.2.1"));
        let hash = hasher.hash(client).unwrap();
        assert_eq!(hasher.hash(client).unwrap(), hash);
        assert_ne!(
            hasher.hash(ClientIp::from_addr(ip("192.0.2.2"))).unwrap(),
            hash
        );
        // Hex digits only: the address cannot show through (a digit run such as "192"
        // may occur by chance in any hash, so that is not what is checked).
        assert!(!hash.contains("192.0.2.1"));
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hash.len(), 32);
    }

    #[test]
    fn the_day_key_is_replaced_on_the_next_day_even_without_sign_ups() {
        let hasher = ClientHasher::starting_on(20_000).unwrap();
        let client = ClientIp::from_addr(ip("192.0.2.1"));
        let monday = hasher.hash_on(20_000, client).unwrap();
        let (_, monday_key) = hasher.held_key();

        // The sweep's call on a later day, with no hash asked for in between.
        hasher.key_for(20_001).unwrap();
        let (day, tuesday_key) = hasher.held_key();
        assert_eq!(day, 20_001);
        assert_ne!(tuesday_key, monday_key, "Monday's key is gone");
        assert_ne!(hasher.hash_on(20_001, client).unwrap(), monday);

        // Within a day the key stays, so a day's posts can still be linked.
        hasher.key_for(20_001).unwrap();
        assert_eq!(hasher.held_key().1, tuesday_key);
        hasher.rotate_if_due().unwrap();
        assert_eq!(hasher.held_key().0, today());
    }
}
