//! `GET /api/health` → `{status, store, gateway_sessions}`; for load balancers and start-up scripts.

use crate::app::App;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn handler(State(app): State<App>) -> Json<Value> {
    Json(json!({ "status": "ok", "store": app.store.backend(), "gateway_sessions": app.hub.session_count() }))
}
