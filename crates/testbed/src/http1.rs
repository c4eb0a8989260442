//! One keep-alive HTTP/1.1 connection to a server (hyper's client connection, no pool): what a
//! video player holds to its origin. The light LL-HLS viewers use one each, so thousands of them
//! cost the testbed little more than their sockets.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;

/// A request that takes longer than this (a blocking reload waits at most a few part durations)
/// is an error, and its connection is dropped.
const TIMEOUT: Duration = Duration::from_secs(15);

pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

/// `http://host:port/path?query` split into the address, the `Host` and the path with its query.
pub fn split_url(url: &str) -> Result<(SocketAddr, String, String)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // A name (e.g. `localhost:8080`) is looked up, once per viewer: its first address.
    let addr = match host.parse() {
        Ok(a) => a,
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(host)
            .ok()
            .and_then(|mut a| a.next())
            .with_context(|| format!("{host}: no address (host:port wanted)"))?,
    };
    Ok((addr, host.to_string(), if path.is_empty() { "/".into() } else { path.to_string() }))
}

impl Conn {
    /// A connection to `addr` (made at the first request, and again after a failure).
    pub fn new(addr: SocketAddr, host: String) -> Conn {
        Conn { addr, host, sender: None }
    }

    /// GET `path` (with its query), optionally only its first `range` bytes: the body of a 2xx.
    pub async fn get(&mut self, path: &str, range: Option<u64>) -> Result<Bytes> {
        let got = tokio::time::timeout(TIMEOUT, self.try_get(path, range)).await;
        let got = got.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer in {TIMEOUT:?}")));
        if got.is_err() {
            self.sender = None;
        }
        got
    }

    async fn try_get(&mut self, path: &str, range: Option<u64>) -> Result<Bytes> {
        let sender = match &mut self.sender {
            Some(s) if !s.is_closed() => s,
            _ => self.sender.insert(self.connect().await?),
        };
        sender.ready().await.context("connection closed")?;
        let mut req = Request::get(path).header(header::HOST, &self.host);
        if let Some(n) = range {
            req = req.header(header::RANGE, format!("bytes=0-{}", n.saturating_sub(1)));
        }
        let resp = sender.send_request(req.body(Empty::new())?).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{path}: HTTP {status}");
        }
        Ok(body)
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>> {
        let tcp =
            tokio::net::TcpStream::connect(self.addr).await.with_context(|| format!("connecting {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_address_and_path() {
        let (addr, host, path) = super::split_url("http://127.0.0.1:8080/live/1/index.m3u8?a=x").unwrap();
        assert_eq!((addr.port(), host.as_str(), path.as_str()), (8080, "127.0.0.1:8080", "/live/1/index.m3u8?a=x"));
        assert_eq!(super::split_url("http://127.0.0.1:1").unwrap().2, "/");
        assert!(super::split_url("https://example.com/").is_err());
        assert!(super::split_url("http://no-port/").is_err());
        assert_eq!(super::split_url("http://localhost:9/").unwrap().0.port(), 9);
    }
}
