//! Serving the chat plane: the router, and a graceful shutdown that lets in-flight requests finish
//! and sends every gateway socket a close frame.

use crate::app::App;
use axum::Router;
use axum::routing::get;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// `/api/*` and `/gateway`, with state applied. Compose more routes onto it with `merge`.
pub fn router(app: &App) -> Router {
    router_for(app, true, true)
}

/// The HTTP API, the gateway, or both (a cluster node may serve one of them only).
pub fn router_for(app: &App, api: bool, gateway: bool) -> Router {
    let mut r = if api { crate::api::router(app) } else { Router::new() };
    if gateway {
        r = r.route("/gateway", get(crate::gateway::socket::handler));
    }
    r.fallback(crate::api::unknown_route).with_state(app.clone())
}

/// Serves `router` (normally [`router`] plus whatever the binary adds) on `listener` until
/// `shutdown` resolves, with housekeeping running beside it. Returns after in-flight requests
/// finished and gateway sockets closed (bounded by a few seconds).
pub async fn serve(
    listener: TcpListener,
    app: App,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(app.clone().run_housekeeping());
    let token = app.shutdown.clone();
    let signal = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = token.cancelled() => {}
        }
        token.cancel();
    };
    let listener = crate::listener::Listener(listener);
    axum::serve(listener, router.into_make_service_with_connect_info::<crate::listener::PeerAddr>())
        .with_graceful_shutdown(signal)
        .await?;
    app.sockets.close();
    if tokio::time::timeout(Duration::from_secs(5), app.sockets.wait()).await.is_err() {
        tracing::warn!("gateway sockets did not close within 5 s");
    }
    housekeeping.abort();
    Ok(())
}
