//! Ending a WebSocket the way RFC 6455 §7 asks, for `/gateway` and `/voice` alike.
//!
//! The server sends Close, then keeps reading (and discarding) until the peer's Close or a short
//! deadline, and only then drops the TCP connection. Dropping it while the client's frames are
//! still unread makes the kernel answer with RST instead of FIN, and the client loses what was in
//! flight to it: the close frame, and the replies before it.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::time::Duration;

/// How long a closing socket waits for the peer's Close.
pub const LINGER: Duration = Duration::from_secs(2);

/// 1002: the peer broke the WebSocket framing rules.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1007: a text frame that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1009: a frame or message over the size limit.
pub const TOO_BIG: u16 = 1009;

/// Sends Close with `code`, then drains the socket until the peer's Close, an error, or [`LINGER`].
pub async fn close(ws: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame { code, reason: reason.into() };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + LINGER;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.recv()).await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
}

/// The close code for a frame the WebSocket layer refused to read; `None` when the connection
/// itself failed (reset, I/O error), where no close frame can be sent.
pub fn code_for(e: &axum::Error) -> Option<u16> {
    use std::error::Error;
    match e.source()?.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some(TOO_BIG),
        tungstenite::Error::Utf8(_) => Some(INVALID_PAYLOAD),
        tungstenite::Error::Protocol(p) if !is_gone(p) => Some(PROTOCOL_ERROR),
        _ => None,
    }
}

fn is_gone(p: &tungstenite::error::ProtocolError) -> bool {
    matches!(p, tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
}

/// Whether `text`, past leading white space, is a JSON object. serde's derived structs also accept
/// arrays (`[1,2]` reads as `{op:1, d:2}`); frames and their payloads must be objects.
pub fn is_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
}
