//! HTTP: `/metrics` (Prometheus text), `/healthz` (cheap, no outside calls), `/readyz`
//! (partitions assigned and indicators loaded), `/v1/lookup?value=...` (incident response).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;

use crate::intel::IntelStore;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(String),
}

impl ServerError {
    pub fn code(&self) -> &'static str {
        match self {
            ServerError::Bind { .. } => "bind",
            ServerError::Recorder(_) => "recorder",
        }
    }
}

/// What the handlers read.
#[derive(Clone)]
pub struct ServerState {
    pub metrics: PrometheusHandle,
    pub store: Arc<IntelStore>,
    /// Set by the pipeline once partitions are assigned (or always true for roles without input).
    pub has_assignment: Arc<dyn Fn() -> bool + Send + Sync>,
    pub reference_base: Option<String>,
    pub lookup: Option<Arc<crate::misp::lookup::LiveLookup>>,
    pub shutting_down: Arc<AtomicBool>,
}

/// Installs the global Prometheus recorder (once per process).
pub fn install_recorder() -> Result<PrometheusHandle, ServerError> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let buckets = [
        0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
    ];
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&buckets)
        .map_err(|err| ServerError::Recorder(err.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|err| ServerError::Recorder(err.to_string()))?;
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/lookup", get(lookup))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listen: &str,
    state: ServerState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr, ServerError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: listen.to_string(),
        source,
    })?;
    tracing::info!(%addr, "HTTP server listening.");
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "HTTP server stopped.");
        }
    });
    Ok(addr)
}

async fn metrics_handler(State(state): State<ServerState>) -> Response {
    let age = chrono::Utc::now().timestamp() - state.store.last_success_unix();
    if state.store.is_loaded() {
        metrics::gauge!(crate::telemetry::metrics::INTEL_SYNC_AGE).set(age.max(0) as f64);
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(state): State<ServerState>) -> Response {
    if state.shutting_down.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn readyz(State(state): State<ServerState>) -> Response {
    let intel = state.store.is_loaded();
    let partitions = (state.has_assignment)();
    let body = serde_json::json!({ "indicators_loaded": intel, "partitions_assigned": partitions, "indicators": state.store.load().len() });
    let status = if intel && partitions && !state.shutting_down.load(Ordering::Acquire) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
struct LookupQuery {
    value: Option<String>,
}

async fn lookup(State(state): State<ServerState>, Query(query): Query<LookupQuery>) -> Response {
    let Some(value) = query.value.filter(|v| !v.trim().is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "missing query parameter `value`"})),
        )
            .into_response();
    };
    let snapshot = state.store.load_full();
    let local =
        crate::commands::lookup::lookup_local(&snapshot, &value, state.reference_base.as_deref());
    if !local.is_empty() {
        return Json(serde_json::json!({"value": value, "known": true, "source": "local", "enrichments": local})).into_response();
    }
    if let Some(live) = &state.lookup {
        match live.lookup(&value).await {
            Ok(remote) if !remote.is_empty() => {
                return Json(serde_json::json!({"value": value, "known": true, "source": "misp", "enrichments": remote})).into_response();
            }
            Ok(_) => {}
            Err(err) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    Json(serde_json::json!({"value": value, "known": false, "error": err})),
                )
                    .into_response();
            }
        }
    }
    (StatusCode::NOT_FOUND, Json(serde_json::json!({"value": value, "known": false, "source": "none", "enrichments": []}))).into_response()
}
