//! The one place where errors become HTTP responses: RFC 9457 problem details
//! (`application/problem+json`), with field errors where input was refused.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pm_storage::{ObjectError, StoreError};
use pm_supervisors::CallError;
use serde::Serialize;

/// One refused input field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, parameter or path segment: `ean`, `items[3].title`, `limit`, `id`.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl ToString) -> Self {
        Self {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many attempts; retry after {} s", .retry_after.as_secs().max(1))]
    TooManyRequests { retry_after: Duration },
    #[error("{0}")]
    NotFound(String),
    #[error("{}: {}", .0.field, .0.reason)]
    Conflict(FieldError),
    /// If-Match named a version that is no longer current; `etag` is the current one.
    #[error("{detail}")]
    PreconditionFailed { detail: String, etag: Option<String> },
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("expected content type application/json")]
    UnsupportedMediaType,
    /// An upload that is not an image of an accepted format (the detail says which are).
    #[error("{0}")]
    UnsupportedImage(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("service overloaded: {detail}")]
    Overloaded { detail: String, retry_after: Duration },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("request took longer than {0:?}")]
    Timeout(Duration),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        Self::Invalid(vec![FieldError::new(field, reason)])
    }

    /// A short machine-readable name of the error, for WebSocket error messages.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_)
            | Self::TooLarge { .. }
            | Self::UnsupportedMediaType
            | Self::UnsupportedImage(_)
            | Self::MethodNotAllowed(_) => "bad_request",
            Self::Invalid(_) => "invalid",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed { .. } => "precondition_failed",
            Self::Overloaded { .. } | Self::Unavailable(_) | Self::Timeout(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType | Self::UnsupportedImage(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Overloaded { .. } | Self::Unavailable(_) | Self::Timeout(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error (RFC 9457 problem details).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Problem<'a> {
    /// Always `about:blank`: the status says what kind of error it is.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "about:blank")]
    kind: &'a str,
    /// The status's reason phrase.
    #[schema(value_type = String, example = "Unprocessable Entity")]
    title: &'a str,
    /// The HTTP status, again.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong, for people.
    detail: String,
    /// Each refused field and why; absent when the error is about no field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1, required = false)]
    errors: Vec<FieldError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let detail = match &self {
            // Internal details go to the log, not to the client.
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; the request id identifies it in the logs".to_owned()
            }
            other => other.to_string(),
        };
        let errors = match &self {
            Self::Invalid(errors) => errors.clone(),
            Self::Conflict(e) => vec![e.clone()],
            Self::TooLarge { .. } => vec![FieldError::new("body", &self)],
            _ => Vec::new(),
        };
        let body = Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::Overloaded { retry_after, .. } | Self::TooManyRequests { retry_after } = &self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Self::PreconditionFailed { etag: Some(tag), .. } = &self {
            if let Ok(v) = HeaderValue::from_str(tag) {
                resp.headers_mut().insert(header::ETAG, v);
            }
        }
        if let Self::Unauthorized(_) = &self {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(vec![e])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Self::NotFound(e.to_string()),
            StoreError::Conflict { field, .. } => Self::Conflict(FieldError::new(field, &e)),
            StoreError::BadCursor => Self::invalid("cursor", "not a cursor returned by this list"),
            StoreError::Invalid { field, reason } => Self::invalid(field, reason),
            StoreError::Refused { field, reason } => Self::Conflict(FieldError::new(field, reason)),
            StoreError::Stale { current, .. } => Self::PreconditionFailed {
                detail: format!("{e}; read it again and retry"),
                etag: Some(crate::etag::of_version(current)),
            },
            e if e.is_unavailable() => Self::Unavailable(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl<E: Into<ApiError> + std::fmt::Display> From<CallError<E>> for ApiError {
    fn from(e: CallError<E>) -> Self {
        match e {
            CallError::Backpressure { retry_after, .. } => Self::Overloaded {
                detail: e.to_string(),
                retry_after,
            },
            CallError::Stopped { .. } => Self::Unavailable(e.to_string()),
            CallError::Panicked { .. } => Self::Internal(e.to_string()),
            CallError::Handler(inner) => inner.into(),
        }
    }
}

impl From<pm_media::MediaError> for ApiError {
    /// What probing an upload found wrong with it: another format is 415, the size limit 413,
    /// the rest (a decompression bomb, a corrupt header) 422 on the `file` field.
    fn from(e: pm_media::MediaError) -> Self {
        use pm_media::MediaError as M;
        match e {
            M::UnsupportedFormat => Self::UnsupportedImage(e.to_string()),
            M::TooLarge {
                what: "input", max, ..
            } => Self::TooLarge { limit: max as usize },
            e => Self::invalid("file", e),
        }
    }
}

impl From<pm_actors::media::AddError> for ApiError {
    fn from(e: pm_actors::media::AddError) -> Self {
        use pm_actors::media::AddError as A;
        match e {
            A::Empty => Self::invalid("file", "the file is empty"),
            A::Unreadable(e) => e.into(),
            A::Probe(_) => Self::invalid("file", e),
            A::Object(e) => e.into(),
            A::Store(e) => e.into(),
        }
    }
}

impl From<pm_actors::media::FetchError> for ApiError {
    /// An image URL that could not be fetched is the `url` field's fault (422), but for its
    /// size (413).
    fn from(e: pm_actors::media::FetchError) -> Self {
        match e {
            pm_actors::media::FetchError::TooLarge { limit } => Self::TooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            e => Self::invalid("url", e),
        }
    }
}

impl From<ObjectError> for ApiError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::NotFound { .. } => Self::NotFound(e.to_string()),
            ObjectError::InvalidKey { .. } | ObjectError::InvalidBucket(_) => Self::invalid("key", e),
            ObjectError::TooLarge { limit } => Self::TooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_maps_to_503_with_retry_after() {
        let e: ApiError = CallError::<StoreError>::Backpressure {
            actor: "store.catalog".into(),
            retry_after: Duration::from_millis(1500),
        }
        .into();
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/problem+json");
    }

    #[test]
    fn store_errors_map_to_client_statuses() {
        let nf: ApiError = StoreError::NotFound {
            entity: "product",
            id: "x".into(),
        }
        .into();
        assert_eq!(nf.status(), StatusCode::NOT_FOUND);
        let c: ApiError = StoreError::Conflict {
            entity: "product",
            field: "ean",
            value: "1".into(),
        }
        .into();
        assert_eq!(c.status(), StatusCode::CONFLICT);
        let t: ApiError = StoreError::Database(sqlx_pool_timeout()).into();
        assert_eq!(t.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    fn sqlx_pool_timeout() -> pm_storage::error::SqlxError {
        pm_storage::error::SqlxError::PoolTimedOut
    }
}
