//! Request extractors whose errors are problem+json and name the field at fault.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use crate::AppState;

/// The body limit of a route that raised the default one, so that a 413 quotes the limit
/// that applied.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON body. Unknown fields, wrong types and invalid values (an EAN with a bad check digit)
/// are reported with the path of the field, e.g. `ean: gtin check digit is 2, expected 1`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m == "application/json" || m.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(state.settings.server.body_limit_bytes, |l| l.0);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge { limit }
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        parse(&bytes).map(Json)
    }
}

/// Parses JSON, naming the failing field. Anything after the JSON value but white space is a
/// malformed body (400).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = parse_from(de)?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("body is not valid json: {e}")))?;
    Ok(value)
}

/// Every string and key of a free JSON value (attributes, settings) under the text rule: no
/// control characters (a NUL would be refused by PostgreSQL), strings at most `max`
/// characters, at most 16 levels deep.
pub fn check_json_text(v: &serde_json::Value, max: usize) -> Result<(), String> {
    fn walk(v: &serde_json::Value, max: usize, depth: usize) -> Result<(), String> {
        use pm_domain::text::{check, TextKind};
        if depth > 16 {
            return Err("nested more than 16 levels".into());
        }
        match v {
            serde_json::Value::String(s) => check(s, TextKind::Multiline, max).map_err(|e| e.to_string()),
            serde_json::Value::Array(a) => a.iter().try_for_each(|x| walk(x, max, depth + 1)),
            serde_json::Value::Object(o) => o.iter().try_for_each(|(k, x)| {
                check(k, TextKind::Line, 200).map_err(|e| format!("key {e}"))?;
                walk(x, max, depth + 1)
            }),
            _ => Ok(()),
        }
    }
    walk(v, max, 0)
}

fn parse_from<T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("body is not valid json: {inner}"))
        } else {
            // serde_json appends " at line L column C"; the field path says more.
            let msg = inner.to_string();
            let reason = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m)
                .to_owned();
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::Invalid(vec![FieldError { field, reason }])
        }
    })
}

/// The largest page a list returns, and its size when the caller does not say.
pub const MAX_PAGE: u32 = 500;
pub const DEFAULT_PAGE: u32 = 50;

/// A list's page size from the `limit` parameter: [`DEFAULT_PAGE`] when absent, 1 to
/// [`MAX_PAGE`].
pub fn page_limit(limit: Option<u32>) -> Result<u32, FieldError> {
    bounded_limit(limit, DEFAULT_PAGE, MAX_PAGE)
}

/// `limit`, or `default` when absent, refused outside 1 to `max` with an error naming it.
pub fn bounded_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, FieldError> {
    let l = limit.unwrap_or(default);
    if (1..=max).contains(&l) {
        Ok(l)
    } else {
        Err(FieldError::new("limit", format!("must be between 1 and {max}")))
    }
}

/// For `#[serde(default, deserialize_with = "nullable")]` on an `Option<Option<T>>` field of a
/// PATCH body: an absent field stays `None` (leave it), `null` becomes `Some(None)` (clear it).
pub fn nullable<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Parses a query string into `T`; an error names the parameter at fault: the one the message
/// names (an unknown parameter), or the one without which the rest parses.
pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let err = match serde_urlencoded::from_str::<T>(q) {
        Ok(v) => return Ok(v),
        Err(e) => e.to_string(),
    };
    if let Some(rest) = err.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return Err(ApiError::invalid(name, format!("unknown parameter; {err}")));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
    for i in 0..pairs.len() {
        let rest: Vec<&(String, String)> = pairs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| p)
            .collect();
        let Ok(without) = serde_urlencoded::to_string(&rest) else {
            continue;
        };
        if serde_urlencoded::from_str::<T>(&without).is_ok() {
            let (name, value) = &pairs[i];
            return Err(ApiError::invalid(name.clone(), format!("{value:?}: {err}")));
        }
    }
    Err(ApiError::invalid("query", err))
}

/// Query string parameters, with problem+json errors.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        ean: pm_domain::Gtin,
        title: String,
    }

    #[test]
    fn names_the_field_and_the_reason() {
        match parse::<Body>(br#"{"ean":"4006381333932","title":"x"}"#) {
            Err(ApiError::Invalid(e)) => {
                assert_eq!(e[0].field, "ean");
                assert_eq!(e[0].reason, "gtin check digit is 2, expected 1");
            }
            other => panic!("{other:?}"),
        }
        match parse::<Body>(br#"{"ean":"4006381333931","title":"x","colour":"red"}"#) {
            Err(ApiError::Invalid(e)) => assert!(e[0].reason.contains("unknown field `colour`"), "{e:?}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse::<Body>(b"{not json"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
