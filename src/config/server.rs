//! `[server]`: the public listener, the proxies in front of it and the origins whose
//! scripts may call it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, HumanDuration};

/// The public listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port of the public listener.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes, counted after decompression.
    pub max_body_bytes: usize,
    /// Worker threads serving HTTP; 0 means one per CPU core.
    pub workers: usize,
    /// Reverse proxies whose forwarding header is believed: CIDR ranges
    /// (`10.0.0.0/8`) or bare addresses, each one host (`/32` for IPv4, `/128` for
    /// IPv6).
    #[serde(deserialize_with = "proxies")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one forwarding header the trusted proxies write.
    pub forwarding_header: ForwardingHeader,
    /// Web origins (`https://example.org`) whose scripts may post to joinform and read
    /// the answer (CORS). Plain HTML forms need no entry here.
    pub allowed_origins: Vec<String>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish.
    pub shutdown_timeout: HumanDuration,
    /// Where visitors and organisers reach joinform (`https://join.example.org`), used
    /// to build the links in mails; unset, no mail carries a link (and follow-up is
    /// off). Checked by [`ServerSettings::check`]; read it through
    /// [`ServerSettings::public_url`].
    pub public_url: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 * 1024,
            workers: 0,
            trusted_proxies: Vec::new(),
            forwarding_header: ForwardingHeader::default(),
            allowed_origins: Vec::new(),
            shutdown_timeout: HumanDuration::from_secs(30),
            public_url: None,
        }
    }
}

impl ServerSettings {
    /// `server.public_url` without trailing slashes, ready for a path to be appended
    /// (`{public_url}/followup/...`); `None` when it is not set.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url
            .as_deref()
            .map(|url| url.trim_end_matches('/'))
    }

    /// Checks what serde cannot: ranges, the form of each origin and of the public URL.
    ///
    /// # Errors
    /// The first value out of range or malformed, by its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1024..=1024 * 1024).contains(&self.max_body_bytes) {
            return Err(ConfigError::bad(
                "server.max_body_bytes",
                format!("{} is outside 1024..=1048576", self.max_body_bytes),
            ));
        }
        if self.shutdown_timeout > HumanDuration::from_secs(3600) {
            return Err(ConfigError::bad(
                "server.shutdown_timeout",
                "must be at most 1h",
            ));
        }
        if self.workers > 256 {
            return Err(ConfigError::bad("server.workers", "must be at most 256"));
        }
        for (index, origin) in self.allowed_origins.iter().enumerate() {
            check_origin(origin).map_err(|problem| {
                ConfigError::bad(format!("server.allowed_origins[{index}]"), problem)
            })?;
        }
        if let Some(url) = &self.public_url {
            check_public_url(url)
                .map_err(|problem| ConfigError::bad("server.public_url", problem))?;
        }
        Ok(())
    }
}

/// `server.public_url`: an absolute http(s) URL with a host and at most a path.
///
/// The text must be exactly what the `url` crate writes for it (a trailing slash aside),
/// because links are built from the text as written: a URL the parser would have to
/// repair (`HTTPS://Example.org`, a default port, a tab, a backslash) is refused with
/// the form to write instead, rather than mailed out as the operator typed it.
fn check_public_url(text: &str) -> Result<(), String> {
    const EXAMPLE: &str = "an address such as https://join.example.org";
    if text.is_empty() {
        return Err("is empty: leave it out when there is no public address".to_owned());
    }
    let url = url::Url::parse(text).map_err(|error| match error {
        url::ParseError::RelativeUrlWithoutBase => {
            format!("`{text}` has no scheme: write {EXAMPLE}")
        }
        url::ParseError::EmptyHost => format!("`{text}` has no host: write {EXAMPLE}"),
        error => format!("`{text}` is not {EXAMPLE} ({error})"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}` must start with https:// or http:// (not {}:)",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err(format!("`{text}` has no host: write {EXAMPLE}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{text}` must not carry a user name or password (user@): links are mailed"
        ));
    }
    if url.query().is_some() {
        return Err(format!(
            "`{text}` must not have a query (?...): links add their own path to it"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "`{text}` must not have a fragment (#...): links add their own path to it"
        ));
    }
    let written = url.as_str();
    if written != text && written.strip_suffix('/') != Some(text) {
        return Err(format!(
            "`{text}` is not in its usual form: write `{written}`"
        ));
    }
    Ok(())
}

/// `server.trusted_proxies`: each entry a CIDR range or a bare IPv4/IPv6 address.
fn proxies<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|entry| parse_proxy(entry).map_err(serde::de::Error::custom))
        .collect()
}

/// A CIDR range, or a bare address as the one-host range (RFC 4632 §3.1 for IPv4,
/// RFC 4291 §2.3 for IPv6): `127.0.0.1` is `127.0.0.1/32`, `::1` is `::1/128`.
///
/// # Errors
/// A message quoting `entry` when it is neither.
pub fn parse_proxy(entry: &str) -> Result<ipnet::IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<ipnet::IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!(
                "`{entry}` is not an IP address or a CIDR range (such as 10.0.0.1 or 10.0.0.0/8)"
            )
        })
}

/// The header a trusted proxy names the client in. Only that one is read: a proxy
/// appends to the header it writes but passes the other on as the client sent it, so
/// believing both would let a client name itself through the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardingHeader {
    /// `X-Forwarded-For`, which nginx, HAProxy, Caddy, Traefik and cloud load
    /// balancers write.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

/// A web origin as browsers send it: `https://host` or `http://host:port`, no path.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if host_ok {
        Ok(())
    } else {
        Err(
            "must be a scheme and host (and port) only, such as https://example.org, without a path or wildcard",
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ServerSettings, Settings};

    fn with_public_url(url: &str) -> ServerSettings {
        ServerSettings {
            public_url: Some(url.to_owned()),
            ..ServerSettings::default()
        }
    }

    #[test]
    fn a_public_url_is_an_http_address_and_loses_its_trailing_slash() {
        for (url, link_base) in [
            ("https://join.example.org", "https://join.example.org"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("https://example.org/join/", "https://example.org/join"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ] {
            let server = with_public_url(url);
            assert!(server.check().is_ok(), "{url}: {:?}", server.check());
            assert_eq!(server.public_url(), Some(link_base), "{url}");
        }
        assert_eq!(ServerSettings::default().public_url(), None);
    }

    #[test]
    fn a_bad_public_url_is_refused_by_its_key() {
        let cases = [
            ("join.example.org", "no scheme", "no scheme"),
            ("ftp://x", "https://", "another scheme"),
            ("https://", "no host", "no host"),
            ("https://x/?a=1", "query", "a query"),
            ("https://u@x/", "user name", "a user name"),
            ("https://u:p@x/", "user name", "a password"),
            ("http://x#f", "fragment", "a fragment"),
            ("", "empty", "nothing"),
            (
                "HTTPS://Join.Example.org",
                "write `https://join.example.org/`",
                "capitals",
            ),
            ("https://x:443/", "write `https://x/`", "the default port"),
            (" https://x", "write `https://x/`", "a space"),
            ("https:x", "write `https://x/`", "no slashes"),
            ("https://a b", "not an address", "a space in the host"),
        ];
        for (url, expected, reason) in cases {
            let error = with_public_url(url).check().expect_err(reason).to_string();
            assert!(
                error.starts_with("server.public_url: ") && error.contains(expected),
                "{reason}: {error}"
            );
        }
    }

    #[test]
    fn a_trusted_proxy_is_a_cidr_range_or_one_host() {
        let file = |entries: &str| {
            format!(
                "[server]\ntrusted_proxies = {entries}\n[fallback]\nname = \"X\"\n\
                 contacts = [\"a@example.org\"]\nlanguage = \"en\"\n"
            )
        };
        let settings = Settings::from_toml(
            Some(&file(
                r#"["127.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32", " 192.0.2.7 "]"#,
            )),
            false,
        )
        .unwrap();
        let loaded: Vec<String> = settings
            .server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            loaded,
            [
                "127.0.0.1/32",
                "10.0.0.0/8",
                "::1/128",
                "2001:db8::/32",
                "192.0.2.7/32"
            ]
        );
        for bad in ["10.0.0.0/33", "localhost", "10.0.0", ""] {
            let error = Settings::from_toml(Some(&file(&format!("[\"{bad}\"]"))), false)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("trusted_proxies") && error.contains("not an IP address"),
                "{bad}: {error}"
            );
        }
    }
}
