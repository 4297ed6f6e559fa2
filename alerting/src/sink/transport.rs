//! The stream syslog travels on: TCP, or TLS over TCP (RFC 5425), kept open
//! between sends and dropped on the first error.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::error::Origin;
use super::{SinkError, CONNECT_TIMEOUT, WRITE_TIMEOUT};

/// A byte stream to the collector, plain or TLS. `Sync` too, so that a
/// `&Transport` held across an await keeps the send future `Send`.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// How to reach a collector, and the connection to it when one is open.
pub(crate) struct Transport {
    origin: Origin,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    conn: Option<Box<dyn Stream>>,
}

impl Transport {
    /// Prepares the connection to `address` (`host:port`) of sink `sink`:
    /// with `tls`, the collector's certificate must chain to `ca_pem`, or to
    /// the public web roots when there is none, and name the host part of
    /// the address (a DNS name or an IP address).
    pub(crate) fn new(
        sink: &str,
        address: &str,
        tls: bool,
        ca_pem: Option<&str>,
    ) -> Result<Transport, SinkError> {
        let scheme = if tls { "tls" } else { "tcp" };
        let origin = Origin::new(sink, format!("{scheme}://{address}"), Vec::new());
        let (host, port) = split_address(address)
            .ok_or_else(|| origin.config("target.address", "not host:port"))?;
        let tls = if tls {
            let name = ServerName::try_from(host.clone()).map_err(|e| {
                origin.config(
                    "target.address",
                    format!("`{host}` cannot name a TLS server: {e}"),
                )
            })?;
            Some((TlsConnector::from(client_config(&origin, ca_pem)?), name))
        } else {
            None
        };
        Ok(Transport {
            origin,
            host,
            port,
            tls,
            conn: None,
        })
    }

    /// The sink's name and address, for errors.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Writes `bytes` and flushes them, connecting first if no connection is
    /// open. On any error the connection is dropped, so that the next call
    /// starts afresh.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        if let Some(conn) = self.conn.as_mut() {
            if !is_open(conn).await {
                self.conn = None;
            }
        }
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        match timeout(WRITE_TIMEOUT, async {
            conn.write_all(bytes).await?;
            conn.flush().await
        })
        .await
        {
            Ok(Ok(())) => {
                self.conn = Some(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(self.origin.io(e)),
            Err(_) => Err(self.origin.timeout("sending")),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, SinkError> {
        let origin = &self.origin;
        let tcp = timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| origin.timeout("connecting"))?
        .map_err(|e| origin.unreachable(e.to_string()))?;
        // Alerts are written in whole batches with one flush; Nagle would
        // only delay the last segment.
        let _ = tcp.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let tls = timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
            .await
            .map_err(|_| origin.timeout("doing the TLS handshake"))?
            .map_err(|e| origin.tls(handshake_reason(&e)))?;
        Ok(Box::new(tls))
    }
}

/// Whether a kept connection still looks usable. Collectors never send
/// anything, so a readable end of stream means the peer closed it; writing
/// to such a socket would succeed locally and lose the data, hence this
/// check before each write.
async fn is_open(conn: &mut Box<dyn Stream>) -> bool {
    // Tokio learns that a socket became readable only when its reactor
    // polls the OS; if this task kept the thread busy since the peer left,
    // no one has. A yield lets the reactor run before the socket is asked.
    tokio::task::yield_now().await;
    let mut scratch = [0u8; 512];
    poll_fn(|cx| {
        let mut buf = ReadBuf::new(&mut scratch);
        Poll::Ready(match Pin::new(&mut **conn).poll_read(cx, &mut buf) {
            // Unexpected bytes from the collector: ignore them.
            Poll::Ready(Ok(())) => !buf.filled().is_empty(),
            Poll::Ready(Err(_)) => false,
            Poll::Pending => true,
        })
    })
    .await
}

/// `host:port` or `[v6]:port` split in two; `None` when it is neither.
fn split_address(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The TLS client configuration: ring, TLS 1.2 and 1.3, the collector's CA
/// from `ca_pem` or else the web roots, no client certificate.
fn client_config(
    origin: &Origin,
    ca_pem: Option<&str>,
) -> Result<Arc<rustls::ClientConfig>, SinkError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| origin.config("target.ca_pem", format!("not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(origin.config("target.ca_pem", "holds no CERTIFICATE block"));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    origin.config("target.ca_pem", format!("not a usable CA certificate: {e}"))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    // The provider is chosen here rather than process-wide, so this crate
    // works whatever else the process installed as its default.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| origin.config("target.tls", e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What made a handshake fail: rustls's own words when it was rustls that
/// refused (unknown issuer, name mismatch, …).
fn handshake_reason(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => format!("handshake failed: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split_address("siem.example:6514"),
            Some(("siem.example".into(), 6514))
        );
        assert_eq!(
            split_address("[fd00::1]:514"),
            Some(("fd00::1".into(), 514))
        );
        assert_eq!(split_address("10.0.0.1"), None);
        assert_eq!(split_address("10.0.0.1:0"), None);
        assert_eq!(split_address(":514"), None);
    }

    #[test]
    fn a_ca_pem_without_certificates_is_a_config_error() {
        let bad = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        for pem in [bad, "hello"] {
            match Transport::new("siem", "127.0.0.1:6514", true, Some(pem)) {
                Err(SinkError::Config { field, .. }) => assert_eq!(field, "target.ca_pem"),
                other => panic!("expected a config error, got {:?}", other.err()),
            }
        }
        assert!(Transport::new("siem", "127.0.0.1:6514", true, None).is_ok());
        assert!(Transport::new("siem", "localhost", false, None).is_err());
    }
}
