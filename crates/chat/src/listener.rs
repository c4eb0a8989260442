//! The TCP listener the HTTP server runs on, so that even the errors hyper answers by itself carry
//! the `{code, message}` body every other error has.
//!
//! hyper answers a request it cannot parse (a malformed request line or header, a URI over 64 KiB,
//! headers over its buffer) before any route runs, with an empty body and no way to change it. The
//! connection's writes pass through [`JsonErrors`], which recognises those answers (an error
//! status, `content-length: 0`, no content type: no route of ours ever sends one) and adds the JSON
//! body. After such an answer the client may still be sending (a 600 KB header); the socket is
//! drained for a moment before it is dropped, or the kernel would reset the connection and the
//! client would lose the answer.

use crate::api::error::code;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a connection that got one of hyper's error answers is drained before it is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// A TCP listener whose connections are [`JsonErrors`].
#[derive(Debug)]
pub struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = JsonErrors;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (JsonErrors, SocketAddr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (JsonErrors { inner: Some(tcp), pending: Vec::new(), sent: 0, answered_error: false }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The client's address, for `ConnectInfo<PeerAddr>` (per-IP login limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, Listener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> PeerAddr {
        PeerAddr(*stream.remote_addr())
    }
}

/// A connection whose writes are checked for hyper's bodiless error answers (see the module docs).
#[derive(Debug)]
pub struct JsonErrors {
    /// `None` only after drop handed it to the draining task.
    inner: Option<TcpStream>,
    /// A rewritten answer, and how much of it is written.
    pending: Vec<u8>,
    sent: usize,
    answered_error: bool,
}

impl JsonErrors {
    fn tcp(&mut self) -> io::Result<&mut TcpStream> {
        self.inner.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let (pending, sent) = (std::mem::take(&mut self.pending), self.sent);
            let r = Pin::new(self.tcp()?).poll_write(cx, &pending[sent..]);
            self.pending = pending;
            match ready!(r) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for JsonErrors {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.tcp()?).poll_read(cx, buf)
    }
}

impl AsyncWrite for JsonErrors {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = rewrite(buf) {
            (self.pending, self.sent, self.answered_error) = (answer, 0, true);
            // Written now as far as the socket takes it; flush and shutdown finish it.
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(self.tcp()?).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(self.tcp()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(self.tcp()?).poll_shutdown(cx)
    }
}

impl Drop for JsonErrors {
    fn drop(&mut self) {
        if !self.answered_error {
            return;
        }
        let (Some(mut tcp), Ok(rt)) = (self.inner.take(), tokio::runtime::Handle::try_current()) else { return };
        rt.spawn(async move {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut tcp).await;
            let mut sink = [0u8; 16 * 1024];
            let drain = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
        });
    }
}

/// hyper's answer to a request it could not parse, as a JSON error; `None` for anything else.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if head_end != buf.len() || !buf.starts_with(b"HTTP/1.1 ") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let (code, message) = match head.get(9..12)? {
        "400" => (code::BAD_REQUEST, "malformed HTTP request"),
        "414" => (code::URI_TOO_LONG, "request URI too long"),
        "431" => (code::HEADERS_TOO_LARGE, "request headers too large"),
        _ => return None,
    };
    let lower = head.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") || lower.contains("\r\ncontent-type:") {
        return None;
    }
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    for line in head[..head_end - 4].split("\r\n") {
        if line.eq_ignore_ascii_case("content-length: 0") {
            out.push_str("content-type: application/json\r\n");
            out.push_str(&format!("content-length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("connection: close\r\n\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_errors_are_rewritten() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 ") && head.contains("content-type: application/json"), "{out}");
        assert!(head.contains(&format!("content-length: {}", body.len())) && head.contains("date: x"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], code::HEADERS_TOO_LARGE);
        for kept in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad",
            b"\x00\x01",
        ] {
            assert!(rewrite(kept).is_none(), "{}", String::from_utf8_lossy(kept));
        }
    }
}
