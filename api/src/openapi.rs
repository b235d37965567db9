//! The OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! It is generated, never written: every route is registered with `utoipa_axum::routes!` from a
//! handler annotated with `#[utoipa::path]`, so a route and its operation are one registration
//! and the router cannot serve what the document does not describe (a test in [`tests`] refuses
//! a plain `.route(...)` in `routes/`). Request and response bodies are the handlers' own types
//! (`ToSchema`), down to the domain values (`pm_domain::schema`).
//!
//! What a handler says in its annotation is what the handler itself answers (its success,
//! and the errors it raises: 403, 404, 409, 429, through the marker types below). What the
//! layers and extractors around it add is added here, in one place, from the facts that cause
//! it, so that no annotation can forget it:
//!
//! - [`secured`]: the `authenticate` layer: the bearer schemes and 401;
//! - [`needs_permission`]: `require_admin` and `require_catalog`: 403;
//! - [`finish`]: a JSON body (our `Json` extractor): 400, 413, 415, 422; parameters (path ids,
//!   query strings, parsed with errors naming the parameter): 422; every operation: 503 (the
//!   request deadline, a full actor mailbox, a database that is down).
//!
//! Errors are `application/problem+json` ([`crate::error`]), referenced from
//! `components/responses`.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{FieldError, Problem};
use crate::AppState;

/// The security scheme of access tokens (JWT, from `POST /api/v1/auth/login`).
pub const BEARER: &str = "bearer";
/// The security scheme of API keys (`pmk_<prefix>_<secret>`, from `POST /api/v1/api-keys`).
pub const API_KEY: &str = "api_key";
/// The security scheme of `/metrics` when `metrics.token` is set.
pub const METRICS_TOKEN: &str = "metrics_token";

/// The media type of every error.
pub const PROBLEM: &str = "application/problem+json";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Products Manager",
        description = "Turns suppliers' product files into one clean e-commerce catalog.\n\n\
            Every `/api/v1` operation but login and refresh needs `Authorization: Bearer <token>`, \
            the token being an access token (`POST /api/v1/auth/login`) or an API key. Errors are \
            RFC 9457 problem details (`application/problem+json`), with `errors` naming each \
            refused field. Lists are keyset pages: pass `next_cursor` back as `cursor`. Amounts \
            are decimal strings, never JSON numbers.",
        license(name = "MIT", identifier = "MIT"),
    ),
    components(
        schemas(Problem, FieldError),
        responses(
            BadRequestResponse,
            UnauthorizedResponse,
            ForbiddenResponse,
            NotFoundResponse,
            ConflictResponse,
            PreconditionFailedResponse,
            PayloadTooLargeResponse,
            UnsupportedMediaTypeResponse,
            UnprocessableResponse,
            TooManyRequestsResponse,
            UnavailableResponse,
        ),
    ),
    tags(
        (name = "auth", description = "Login, token refresh, logout, the caller."),
        (name = "products", description = "Products, their trash, search and bulk upserts."),
        (name = "suppliers", description = "Suppliers and what they offer."),
        (name = "brands", description = "The curated brands."),
        (name = "categories", description = "The category tree and the categories of products."),
        (name = "prices", description = "Prices per type and currency, and their history."),
        (name = "stocks", description = "Stock per warehouse, and its history."),
        (name = "attributes", description = "Typed attributes of a product."),
        (name = "variants", description = "Products as variants of a parent product."),
        (name = "bundles", description = "Products sold as a set of other products."),
        (name = "seo", description = "Search-engine fields of products."),
        (name = "notifications", description = "The caller's notifications."),
        (name = "jobs", description = "The durable job queues."),
        (name = "imports", description = "Supplier files into the catalog: uploads, import jobs, their rejects."),
        (name = "code2asin", description = "Amazon ASINs for EANs: jobs, results, seller accounts, statistics."),
        (name = "access", description = "Users, roles, permissions, API keys, settings and the \
            activity log (admins)."),
        (name = "live", description = "The WebSocket of live events."),
        (name = "operations", description = "Health, metrics and actors, outside /api/v1."),
        (name = "docs", description = "This document and its interactive reference."),
    ),
)]
struct Base;

/// The document's fixed parts: info, tags, the error schema and responses, the security
/// schemes. Paths come from the routers.
pub fn base() -> OpenApi {
    let mut doc = <Base as utoipa::OpenApi>::openapi();
    // The derive fills the version from this crate; the service's version is the same
    // workspace version.
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from `POST /api/v1/auth/login` or `/api/v1/auth/refresh` \
                     (HS256, 15 minutes by default).",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("pmk_<prefix>_<secret>")
                .description(Some(
                    "An API key from `POST /api/v1/api-keys`, sent as a bearer token: \
                     `Authorization: Bearer pmk_...`. It holds the permissions of its scopes.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        METRICS_TOKEN,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The metrics token (`metrics.token`), when one is set; without one, \
                     `/metrics` is open.",
                ))
                .build(),
        ),
    );
    doc
}

/// Either bearer scheme: an access token or an API key.
pub fn bearer_or_key() -> Vec<SecurityRequirement> {
    vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(API_KEY, Vec::<String>::new()),
    ]
}

fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

fn add_response(op: &mut Operation, status: &str, component: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(component)));
}

/// The operations of `router` sit behind `authenticate`: they take either bearer scheme and may
/// answer 401. Call it where the layer is applied.
pub fn secured(mut router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    for op in operations(router.get_openapi_mut()) {
        op.security.get_or_insert_with(bearer_or_key);
        add_response(op, "401", "Unauthorized");
    }
    router
}

/// The operations of `router` sit behind a permission layer (`require_admin`,
/// `require_catalog`): they may answer 403, and say which permission they need.
pub fn needs_permission(mut router: OpenApiRouter<AppState>, what: &str) -> OpenApiRouter<AppState> {
    for op in operations(router.get_openapi_mut()) {
        add_response(op, "403", "Forbidden");
        let note = format!("Needs {what}.");
        op.description = Some(match op.description.take() {
            Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
            _ => note,
        });
    }
    router
}

/// What every operation may answer besides its own answers, from its shape: see the module
/// documentation.
pub fn finish(doc: &mut OpenApi) {
    for op in operations(doc) {
        if op.request_body.is_some() {
            add_response(op, "400", "BadRequest");
            add_response(op, "413", "PayloadTooLarge");
            add_response(op, "415", "UnsupportedMediaType");
            add_response(op, "422", "Unprocessable");
        }
        if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
            add_response(op, "422", "Unprocessable");
        }
        add_response(op, "503", "Unavailable");
    }
}

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM,
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
            .build(),
    )
}

fn retry_after(b: ResponseBuilder, when: &str) -> ResponseBuilder {
    b.header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
            .description(Some(format!("Seconds to wait before trying again; {when}.")))
            .build(),
    )
}

/// Declares an error response component and a marker type that handlers list in their
/// `responses(...)` to say they raise it.
macro_rules! error_response {
    ($component:ident, $marker:ident, $status:literal, $name:literal, $build:expr) => {
        pub struct $component;

        impl<'r> utoipa::ToResponse<'r> for $component {
            fn response() -> (&'r str, RefOr<Response>) {
                let build: fn() -> ResponseBuilder = $build;
                ($name, RefOr::T(build().build()))
            }
        }

        #[doc = concat!("`", $status, "`: the handler itself may answer it.")]
        pub struct $marker;

        impl utoipa::IntoResponses for $marker {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([(
                    $status.to_owned(),
                    RefOr::Ref(Ref::from_response_name($name)),
                )])
            }
        }
    };
}

error_response!(BadRequestResponse, BadRequest, "400", "BadRequest", || problem(
    "The body is not JSON, or has something after the JSON value."
));
error_response!(UnauthorizedResponse, Unauthorized, "401", "Unauthorized", || {
    problem("No bearer token, or one that is invalid, expired or revoked (the detail says which).").header(
        "WWW-Authenticate",
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["Bearer"])),
            )
            .build(),
    )
});
error_response!(ForbiddenResponse, Forbidden, "403", "Forbidden", || problem(
    "The caller lacks the permission this needs (the detail names it), or is an API key where \
     only a user may act."
));
error_response!(NotFoundResponse, NotFound, "404", "NotFound", || problem(
    "What the path names does not exist (or is not the caller's to see)."
));
error_response!(ConflictResponse, Conflict, "409", "Conflict", || problem(
    "The request conflicts with what is stored: a unique value already taken, a thing still \
     in use, a state that does not allow it. `errors` names the field."
));
error_response!(
    PreconditionFailedResponse,
    PreconditionFailed,
    "412",
    "PreconditionFailed",
    || {
        problem("`If-Match` names a version the resource is no longer at: someone wrote in between. Read it again (the `ETag` header is the current version) and retry.")
            .header(
                "ETag",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("The current version, quoted.".to_owned()))
                    .build(),
            )
    }
);
error_response!(
    PayloadTooLargeResponse,
    PayloadTooLarge,
    "413",
    "PayloadTooLarge",
    || { problem("The body is larger than the route's limit (the detail quotes it).") }
);
error_response!(
    UnsupportedMediaTypeResponse,
    UnsupportedMediaType,
    "415",
    "UnsupportedMediaType",
    || problem("The body is not sent as `application/json`.")
);
error_response!(
    UnprocessableResponse,
    Unprocessable,
    "422",
    "Unprocessable",
    || problem("A field, parameter or path segment was refused; `errors` names each one and why.")
);
error_response!(
    TooManyRequestsResponse,
    TooManyRequests,
    "429",
    "TooManyRequests",
    || {
        retry_after(
            problem("Too many failed attempts for this user or address."),
            "always sent",
        )
    }
);
error_response!(UnavailableResponse, Unavailable, "503", "Unavailable", || {
    retry_after(
        problem(
            "The request took longer than the deadline, the service is overloaded (a full \
             mailbox), or a database it needs is down.",
        ),
        "sent when the service is overloaded",
    )
});

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Routes are registered only through `routes!` (and so documented), never with a plain
    /// `.route(...)`, except the ones listed here with why.
    #[test]
    fn every_route_is_registered_with_its_documentation() {
        // (file, what the line holds, why it is not in the document)
        let allowed: &[(&str, &str, &str)] = &[
            (
                "routes/objects.rs",
                "/objects/{bucket}/{*key}",
                "signed download links, handed out in answers; not an API to call",
            ),
            (
                "routes/admin.rs",
                "/admin/actors/{name}/fault",
                "test builds only (feature fault-injection)",
            ),
        ];
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("openapi.rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let rel = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    for line in text.lines() {
                        let code = line.trim_start();
                        if code.starts_with("//") {
                            continue;
                        }
                        for call in [".route(", ".route_service(", ".nest_service("] {
                            if code.contains(call) {
                                found.push((rel.clone(), code.to_owned()));
                            }
                        }
                    }
                }
            }
        }
        let unexplained: Vec<_> = found
            .iter()
            .filter(|(file, line)| {
                !allowed
                    .iter()
                    .any(|(f, what, _)| file == f && line.contains(what))
            })
            .collect();
        assert!(
            unexplained.is_empty(),
            "routes added without routes!(...) are missing from the OpenAPI document: {unexplained:?}"
        );
    }
}
