//! API errors: one JSON shape, `{"error": "<one line>", "code": "<snake_case>"}`, with the
//! right status (and `Retry-After` where waiting helps). Internal causes are logged on the
//! server, never sent: a client sees one line, never a stack trace.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A missing thing, or one that belongs to another user: the same answer for both.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such session")
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in: send `Authorization: Bearer TOKEN` or log in at POST /api/login",
        )
    }

    pub fn too_many(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many turns this minute; wait a little",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn busy(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "the model is busy with other users; try again shortly",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// A failure of ours: the cause goes to the server's log, the client gets one line.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        eprintln!("upward serve: internal error: {cause}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
    }
}

/// The JSON body of an error (also used inside SSE `error` events).
pub(crate) fn body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": message, "code": code })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(body(self.code, &self.message))).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::NoSuchSession { .. } => ApiError::not_found(),
            crate::store::StoreError::Busy { .. } => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_busy",
                    "the session store is busy; try again",
                );
                e.retry_after = Some(1);
                e
            }
            other => ApiError::internal(other),
        }
    }
}

/// The answer to a handler panic (tower-http's catch-panic): JSON, no details.
pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
        .into_response()
}
