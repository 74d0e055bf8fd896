//! Endpoint parsing the way the Go client does it (omni-api.md §1.1): `https://host[:port]` is TLS
//! on 443 by default, `http://host[:port]` is cleartext HTTP/2 (h2c) on 80 by default, and
//! `grpc://host:port` is cleartext too. Only host and port are dialled; a URL path is ignored.

use crate::error::Error;

/// Whether the connection is TLS or cleartext HTTP/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TLS with ALPN `h2`.
    Tls,
    /// Cleartext HTTP/2 (h2c), as self-hosted Omni serves without certificates.
    Plaintext,
}

/// A parsed Omni endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// TLS or cleartext.
    pub transport: Transport,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `https://…`, `http://…` or `grpc://…`.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            endpoint: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim();
        let uri: http::Uri = trimmed
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| invalid("missing scheme; use https://, http:// or grpc://"))?
            .to_ascii_lowercase();
        let (transport, default_port) = match scheme.as_str() {
            "https" => (Transport::Tls, Some(443)),
            "http" => (Transport::Plaintext, Some(80)),
            "grpc" => (Transport::Plaintext, None),
            other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
        };
        let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user info is not supported in the endpoint"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let port = match (authority.port_u16(), default_port) {
            (Some(p), _) => p,
            (None, Some(p)) => p,
            (None, None) => return Err(invalid("grpc:// endpoints need an explicit port")),
        };
        Ok(Self {
            transport,
            host: host.to_string(),
            port,
        })
    }

    /// The URI tonic dials: `https://host:port` or `http://host:port`.
    pub fn dial_uri(&self) -> String {
        let scheme = match self.transport {
            Transport::Tls => "https",
            Transport::Plaintext => "http",
        };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap()
    }

    #[test]
    fn https_defaults_to_443_and_tls() {
        let e = ep("https://acme.omni.siderolabs.io");
        assert_eq!(e.transport, Transport::Tls);
        assert_eq!((e.host.as_str(), e.port), ("acme.omni.siderolabs.io", 443));
        assert_eq!(e.dial_uri(), "https://acme.omni.siderolabs.io:443");
        assert_eq!(ep("https://omni.local:8443/").port, 8443);
    }

    #[test]
    fn http_is_cleartext_on_80() {
        let e = ep("http://localhost");
        assert_eq!(e.transport, Transport::Plaintext);
        assert_eq!(e.port, 80);
        assert_eq!(ep("http://localhost:8080").port, 8080);
        assert_eq!(ep("HTTP://x:1").transport, Transport::Plaintext);
    }

    #[test]
    fn grpc_needs_a_port() {
        let e = ep("grpc://127.0.0.1:50000");
        assert_eq!(e.transport, Transport::Plaintext);
        assert_eq!(e.port, 50000);
        assert!(Endpoint::parse("grpc://127.0.0.1").is_err());
    }

    #[test]
    fn path_is_ignored_and_ipv6_is_bracketed() {
        assert_eq!(ep("https://h/some/path").dial_uri(), "https://h:443");
        let e = ep("http://[::1]:8080");
        assert_eq!(e.host, "::1");
        assert_eq!(e.dial_uri(), "http://[::1]:8080");
    }

    #[test]
    fn rejects_missing_or_unknown_scheme() {
        for bad in [
            "omni.example.com",
            "omni.example.com:443",
            "ftp://x",
            "",
            "https://",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
