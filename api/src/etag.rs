//! Entity tags and conditional requests (RFC 9110 §8.8.3, §13.1).
//!
//! A product's ETag is its row version, strong (`"7"`): the same version always serializes to
//! the same bytes. `If-None-Match` on a read answers 304 when the client's copy is current;
//! `If-Match` on a write makes it conditional on the version the client read, so two people
//! editing the same product cannot silently overwrite each other (412 for the second).

use axum::http::{header, HeaderMap};

use crate::error::ApiError;

/// The strong ETag of a row version.
pub fn of_version(version: i64) -> String {
    format!("\"{version}\"")
}

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: unconditional.
    Any,
    /// `*`: the resource must exist, whatever its version.
    Exists,
    /// One of these versions.
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Parses `If-Match` against versioned ETags. Weak tags never match (If-Match compares
    /// strongly), and neither does a tag this server never made: both leave a list that
    /// matches nothing, which is a 412, as the RFC says.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
        if values.peek().is_none() {
            return Ok(Self::Any);
        }
        let mut versions = Vec::new();
        for v in values {
            let v = v
                .to_str()
                .map_err(|_| ApiError::BadRequest("if-match is not ascii".into()))?;
            for tag in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if tag == "*" {
                    return Ok(Self::Exists);
                }
                if !(tag.starts_with('"') || tag.starts_with("W/\"")) || !tag.ends_with('"') || tag.len() < 2
                {
                    return Err(ApiError::BadRequest(format!(
                        "if-match: {tag:?} is not an entity tag (a quoted string such as \"3\")"
                    )));
                }
                if let Some(n) = tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse::<i64>().ok())
                {
                    versions.push(n);
                }
            }
        }
        Ok(Self::Versions(versions))
    }

    /// The one version a conditional write can name, if the header asks for one. A list of
    /// several is checked against the current version by [`IfMatch::allows`] first.
    pub fn single(&self) -> Option<i64> {
        match self {
            Self::Versions(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    pub fn allows(&self, version: i64) -> bool {
        match self {
            Self::Any | Self::Exists => true,
            Self::Versions(v) => v.contains(&version),
        }
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, as the RFC says for it), or is `*`.
pub fn none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn if_match_parses_lists_stars_and_refuses_weak_or_foreign_tags() {
        assert_eq!(IfMatch::from_headers(&HeaderMap::new()).unwrap(), IfMatch::Any);
        assert_eq!(
            IfMatch::from_headers(&h(header::IF_MATCH, "*")).unwrap(),
            IfMatch::Exists
        );
        let m = IfMatch::from_headers(&h(header::IF_MATCH, "\"3\", \"5\"")).unwrap();
        assert_eq!(m, IfMatch::Versions(vec![3, 5]));
        assert!(m.allows(5) && !m.allows(4));
        assert_eq!(m.single(), None);
        // weak and unknown tags match nothing
        let weak = IfMatch::from_headers(&h(header::IF_MATCH, "W/\"3\"")).unwrap();
        assert!(!weak.allows(3));
        let foreign = IfMatch::from_headers(&h(header::IF_MATCH, "\"abc\"")).unwrap();
        assert!(!foreign.allows(1));
        assert!(IfMatch::from_headers(&h(header::IF_MATCH, "3")).is_err());
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(none_match_hits(&h(header::IF_NONE_MATCH, "W/\"2\""), "\"2\""));
        assert!(none_match_hits(
            &h(header::IF_NONE_MATCH, "\"1\", \"2\""),
            "\"2\""
        ));
        assert!(none_match_hits(&h(header::IF_NONE_MATCH, "*"), "\"2\""));
        assert!(!none_match_hits(&h(header::IF_NONE_MATCH, "\"1\""), "\"2\""));
        assert!(!none_match_hits(&HeaderMap::new(), "\"2\""));
    }
}
