//! Product images and QR codes (issue 9).
//!
//! - `POST /api/v1/products/{id}/images`: multipart (field `file`) or JSON `{"url": ...}`. The
//!   bytes are bounded by `media.max_upload_bytes` (413), sniffed by their magic
//!   (`pm_media::probe`, on the blocking pool; the file name is never trusted: another format is
//!   415, a decompression bomb or a broken header 422), and stored once per product under
//!   `products/{id[0:2]}/{id}/{sha256}.{ext}` in the product-images bucket. The same bytes
//!   again answer the existing image (200); a new one (201) is queued for its thumbnails
//!   (`media.thumbnails` on the media queue). The handler reads the body (or fetches the URL)
//!   and hands the bytes to `pm_actors::media::MediaDeps`, the path imports' image URLs take
//!   too.
//! - `GET /api/v1/products/{id}/images`, `GET /api/v1/media/{image_id}` (metadata and download
//!   links: `original`, `small`, `medium`, `large`), `PATCH` and `DELETE
//!   /api/v1/products/{id}/images/{image_id}`, `POST /api/v1/media/reprocess`.
//! - `GET /api/v1/products/{id}/qrcode.png` and `.svg`: made once per target text
//!   (`media.qr_url_template`), kept in the bucket and `product_qrcodes`.
//!
//! Reading needs `catalog:read`, the rest `catalog:write` (the catalog layer of `lib.rs`).

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use pm_actors::store::catalog::GetProduct;
use pm_actors::store::media as msg;
use pm_storage::media::{MediaFile, MediaMetadata, MediaThumbnail, ProductQrCode};
use pm_storage::object_store::product_image_key;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use super::catalog::path_id;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::openapi::{BadRequest, Conflict, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMediaType};
use crate::AppState;

pub fn router(max_upload: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(
            routes!(list, upload).layer(
                tower::ServiceBuilder::new()
                    .layer(axum::Extension(BodyLimit(max_upload)))
                    // The multipart envelope around the file: a few kilobytes.
                    .layer(DefaultBodyLimit::max(max_upload.saturating_add(64 * 1024))),
            ),
        )
        .routes(routes!(update, delete))
        .routes(routes!(get_image))
        .routes(routes!(reprocess))
        .routes(routes!(qrcode_png))
        .routes(routes!(qrcode_svg))
}

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ImageForm {
    /// JPEG, PNG, WebP, GIF or TIFF (recognised by its content, whatever its name).
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

/// An image given by URL.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImageUrl {
    /// `http://` or `https://`, fetched at once (at most `media.max_upload_bytes`, within
    /// `media.fetch_timeout_secs`, at most 5 redirects).
    url: String,
}

fn cache_headers(s: &AppState) -> [(header::HeaderName, HeaderValue); 1] {
    let v = format!("private, max-age={}", s.settings.media.cache_max_age_secs);
    [(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("no-cache")),
    )]
}

#[utoipa::path(
    post,
    path = "/products/{id}/images",
    tag = "media",
    operation_id = "upload_product_image",
    summary = "Add an image to a product",
    description = "Multipart, field `file`; or JSON `{\"url\": ...}`. JPEG, PNG, WebP, GIF or \
        TIFF, recognised by content (415 otherwise), at most `media.max_upload_bytes` (413). \
        The same bytes again answer the existing image (200). A product has at most \
        `media.max_images_per_product` images (409); its first is the main one. Thumbnails are \
        made by a `media.thumbnails` job: the image's `status` goes `queued`, `processing`, \
        `done` (or `failed` with `error`).",
    params(("id" = Uuid, Path, description = "The product's id.")),
    request_body(content((ImageForm = "multipart/form-data"), (ImageUrl = "application/json"))),
    responses(
        (status = 201, description = "Stored; its thumbnails are queued.", body = MediaFile),
        (status = 200, description = "The product already had these bytes: that image.", body = MediaFile),
        BadRequest, Unprocessable, PayloadTooLarge, UnsupportedMediaType, Conflict, NotFound,
    ),
)]
async fn upload(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Result<(StatusCode, Json<MediaFile>), ApiError> {
    who.require(pm_domain::Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    // 404 before reading the body when the product does not exist.
    s.actors.stores.catalog.send(GetProduct(product_id)).await?;
    let limit = s.settings.media.max_upload_bytes;
    let media = &s.actors.jobs.media;
    let (bytes, source_url) = if json_body {
        let crate::extract::Json(body) =
            <crate::extract::Json<ImageUrl> as axum::extract::FromRequest<AppState>>::from_request(req, &s)
                .await?;
        let url = url::Url::parse(body.url.trim())
            .map_err(|e| ApiError::invalid("url", format!("not a url: {e}")))?;
        (media.fetch(&url).await?, Some(url.to_string()))
    } else {
        (read_file(&s, req, limit).await?, None)
    };
    let added = media
        .add_original(product_id, bytes, source_url, who.user_id())
        .await?;
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(added.file)))
}

/// The `file` field of a multipart body, at most `limit` bytes.
async fn read_file(s: &AppState, req: axum::extract::Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut form = <Multipart as axum::extract::FromRequest<AppState>>::from_request(req, s)
        .await
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "expected a multipart/form-data body with a field named file, or a JSON body with a url ({})",
                e.body_text()
            ))
        })?;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::BadRequest(format!("multipart: {}", e.body_text()))
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let mut buf = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if buf.len() + chunk.len() > limit {
                return Err(ApiError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        return Ok(buf);
    }
    Err(ApiError::invalid(
        "file",
        "a multipart field named file is required",
    ))
}

#[utoipa::path(
    get,
    path = "/products/{id}/images",
    tag = "media",
    operation_id = "list_product_images",
    summary = "A product's images, in order",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The images, main first when it is first.", body = [MediaFile]), NotFound),
)]
async fn list(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let product_id = path_id("id", &id)?;
    s.actors.stores.catalog.send(GetProduct(product_id)).await?;
    let files = s.actors.stores.media.send(msg::ListImages(product_id)).await?;
    Ok((cache_headers(&s), Json(files)).into_response())
}

/// An image with its metadata and download links.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    #[serde(flatten)]
    pub file: MediaFile,
    pub metadata: Option<MediaMetadata>,
    pub thumbnails: Vec<MediaThumbnail>,
    /// Download links valid for `object_store.link_ttl_secs`: `original`, and `small`,
    /// `medium`, `large` once made.
    #[schema(value_type = Object)]
    pub links: std::collections::BTreeMap<String, String>,
}

/// An image's download links, valid for `object_store.link_ttl_secs`: `original` (the object
/// `original_key`) and one per thumbnail, named by its size.
async fn image_links(
    s: &AppState,
    original_key: &str,
    thumbnails: &[(String, String)],
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let bucket = &s.settings.object_store.buckets.product_images;
    let ttl = std::time::Duration::from_secs(s.settings.object_store.link_ttl_secs);
    let mut links = std::collections::BTreeMap::new();
    links.insert(
        "original".to_owned(),
        s.objects.download_url(bucket, original_key, ttl).await?,
    );
    for (size, key) in thumbnails {
        links.insert(size.clone(), s.objects.download_url(bucket, key, ttl).await?);
    }
    Ok(links)
}

/// A product's main image in product answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct MainImageView {
    pub id: Uuid,
    /// As displayed; null until the image is processed.
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub status: pm_storage::media::MediaStatus,
    pub links: ImageLinks,
}

/// Download links valid for `object_store.link_ttl_secs` (those of `GET /media/{image_id}`);
/// a thumbnail's is null until it is made.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageLinks {
    pub original: String,
    pub small: Option<String>,
    pub medium: Option<String>,
    pub large: Option<String>,
}

/// The main images of these products by product, with their links: one query for them all.
pub(crate) async fn main_images(
    s: &AppState,
    product_ids: Vec<Uuid>,
) -> Result<std::collections::HashMap<Uuid, MainImageView>, ApiError> {
    let mut out = std::collections::HashMap::new();
    if product_ids.is_empty() {
        return Ok(out);
    }
    for m in s.actors.stores.media.send(msg::MainImages(product_ids)).await? {
        let mut links = image_links(
            s,
            &product_image_key(m.product_id, &m.sha256, &m.ext),
            &m.thumbnails,
        )
        .await?;
        let view = MainImageView {
            id: m.id,
            width: m.width,
            height: m.height,
            status: m.status,
            links: ImageLinks {
                original: links.remove("original").unwrap_or_default(),
                small: links.remove("small"),
                medium: links.remove("medium"),
                large: links.remove("large"),
            },
        };
        out.insert(m.product_id, view);
    }
    Ok(out)
}

#[utoipa::path(
    get,
    path = "/media/{image_id}",
    tag = "media",
    operation_id = "get_media",
    summary = "An image: metadata, thumbnails and download links",
    params(("image_id" = Uuid, Path, description = "The image's id.")),
    responses((status = 200, description = "The image.", body = ImageView), NotFound),
)]
async fn get_image(State(s): State<AppState>, Path(image_id): Path<String>) -> Result<Response, ApiError> {
    let id = path_id("image_id", &image_id)?;
    let Some((file, thumbnails, metadata)) = s.actors.stores.media.send(msg::GetImage(id)).await? else {
        return Err(ApiError::NotFound(format!("image {id} not found")));
    };
    let links = image_links(
        &s,
        &product_image_key(file.product_id, &file.sha256, &file.ext),
        &thumbnails
            .iter()
            .map(|t| (t.size.clone(), t.key.clone()))
            .collect::<Vec<_>>(),
    )
    .await?;
    let view = ImageView {
        file,
        metadata,
        thumbnails,
        links,
    };
    Ok((cache_headers(&s), Json(view)).into_response())
}

/// What a patch changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImagePatch {
    /// The new place among the product's images, from 0 (clamped to the last).
    #[schema(minimum = 0)]
    position: Option<i64>,
    /// `true`: this becomes the product's main image.
    is_main: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/products/{id}/images/{image_id}",
    tag = "media",
    operation_id = "update_product_image",
    summary = "Move an image or make it the main one",
    params(
        ("id" = Uuid, Path, description = "The product's id."),
        ("image_id" = Uuid, Path, description = "The image's id."),
    ),
    request_body = ImagePatch,
    responses((status = 200, description = "The image.", body = MediaFile), NotFound),
)]
async fn update(
    State(s): State<AppState>,
    Path((id, image_id)): Path<(String, String)>,
    crate::extract::Json(patch): crate::extract::Json<ImagePatch>,
) -> Result<Json<MediaFile>, ApiError> {
    let product_id = path_id("id", &id)?;
    let id = path_id("image_id", &image_id)?;
    if patch.position.is_some_and(|p| p < 0) {
        return Err(ApiError::invalid("position", "must be 0 or more"));
    }
    let file = s
        .actors
        .stores
        .media
        .send(msg::UpdateImage {
            product_id,
            id,
            position: patch.position,
            is_main: patch.is_main,
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("image {id} of product {product_id} not found")))?;
    Ok(Json(file))
}

#[utoipa::path(
    delete,
    path = "/products/{id}/images/{image_id}",
    tag = "media",
    operation_id = "delete_product_image",
    summary = "Delete an image with its thumbnails",
    params(
        ("id" = Uuid, Path, description = "The product's id."),
        ("image_id" = Uuid, Path, description = "The image's id."),
    ),
    responses((status = 204, description = "Deleted, objects included."), NotFound),
)]
async fn delete(
    State(s): State<AppState>,
    Path((id, image_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let product_id = path_id("id", &id)?;
    let id = path_id("image_id", &image_id)?;
    let (file, keys, shared) = s
        .actors
        .stores
        .media
        .send(msg::DeleteImage { product_id, id })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("image {id} of product {product_id} not found")))?;
    if !shared {
        let bucket = &s.settings.object_store.buckets.product_images;
        let original = product_image_key(file.product_id, &file.sha256, &file.ext);
        // The thumbnails of every format, so that a change of media.thumbnail_format leaves none.
        let mut all = vec![original];
        all.extend(keys);
        for size in ["small", "medium", "large"] {
            for f in [pm_media::OutputFormat::Jpeg, pm_media::OutputFormat::WebP] {
                all.push(pm_actors::media::thumbnail_key(product_id, &file.sha256, size, f));
            }
        }
        all.sort();
        all.dedup();
        for k in all {
            s.objects.delete(bucket, &k).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Which images to process again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReprocessBody {
    /// A product's images.
    product_id: Option<Uuid>,
    /// `true`: every image.
    #[serde(default)]
    all: bool,
}

/// What was queued: a product's thumbnail jobs (`enqueued`), or the job that queues every
/// image's (`job`, on the media queue: `GET /jobs/media/{id}` tells its progress and, once it
/// succeeded, `result.enqueued`).
#[derive(Debug, Serialize, ToSchema)]
struct Reprocessed {
    #[serde(skip_serializing_if = "Option::is_none")]
    enqueued: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<Uuid>,
}

#[utoipa::path(
    post,
    path = "/media/reprocess",
    tag = "media",
    operation_id = "reprocess_media",
    summary = "Make images' thumbnails again",
    description = "`{\"product_id\": ...}`: one `media.thumbnails` job per image of the product \
        (`enqueued`). `{\"all\": true}`: one `media.reprocess` job that queues every image's \
        (`job`).",
    request_body = ReprocessBody,
    responses((status = 202, description = "Queued.", body = Reprocessed), BadRequest, Unprocessable, NotFound),
)]
async fn reprocess(
    State(s): State<AppState>,
    who: Principal,
    crate::extract::Json(body): crate::extract::Json<ReprocessBody>,
) -> Result<(StatusCode, Json<Reprocessed>), ApiError> {
    let media = &s.actors.jobs.media;
    let r = match (body.product_id, body.all) {
        (Some(p), false) => {
            s.actors.stores.catalog.send(GetProduct(p)).await?;
            let n = media.reprocess(Some(p), who.user_id(), |_, _| {}).await?;
            Reprocessed {
                enqueued: Some(n),
                job: None,
            }
        }
        (None, true) => Reprocessed {
            enqueued: None,
            job: Some(media.queue_reprocess_all(who.user_id()).await?.id),
        },
        _ => {
            return Err(ApiError::invalid(
                "product_id",
                "give either product_id or all: true",
            ))
        }
    };
    Ok((StatusCode::ACCEPTED, Json(r)))
}

/// The QR code of a product, made and stored if its text changed or it was never made.
async fn qrcode(s: &AppState, id: &str, svg: bool) -> Result<Response, ApiError> {
    let product_id = path_id("id", id)?;
    let product = s.actors.stores.catalog.send(GetProduct(product_id)).await?;
    let m = &s.settings.media;
    let target = m
        .qr_url_template
        .replace("{id}", &product_id.to_string())
        .replace("{ean}", product.ean.as_ref().map(|g| g.as_str()).unwrap_or(""));
    let bucket = &s.settings.object_store.buckets.product_images;
    let stored = s.actors.stores.media.send(msg::QrCodeOf(product_id)).await?;
    let (key, content_type) = match (&stored, svg) {
        (Some(q), true) => (q.svg_key.clone(), "image/svg+xml"),
        (Some(q), false) => (q.png_key.clone(), "image/png"),
        (None, _) => (String::new(), ""),
    };
    if stored.as_ref().is_some_and(|q| q.target == target) {
        match s.objects.get(bucket, &key).await {
            Ok((_, mut body)) => {
                let mut buf = Vec::new();
                while let Some(c) = body.next().await {
                    buf.extend_from_slice(&c.map_err(|e| ApiError::Internal(e.to_string()))?);
                }
                return Ok(qr_response(s, content_type, buf));
            }
            Err(pm_storage::ObjectError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (module_px, text) = (m.qr_module_px, target.clone());
    let (png, svg_text) = tokio::task::spawn_blocking(move || {
        Ok::<_, pm_media::MediaError>((pm_media::qr_png(&text, module_px)?, pm_media::qr_svg(&text)?))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("making the qr code: {e}")))?
    .map_err(|e| ApiError::invalid("media.qr_url_template", e))?;
    let base = product_image_key(product_id, "qrcode", "x");
    let base = base.trim_end_matches(".x");
    let (png_key, svg_key) = (format!("{base}.png"), format!("{base}.svg"));
    for (k, bytes, ct) in [
        (&png_key, png.clone(), "image/png"),
        (&svg_key, svg_text.clone().into_bytes(), "image/svg+xml"),
    ] {
        let body: pm_storage::object_store::ByteStream =
            Box::pin(futures::stream::once(
                async move { Ok(bytes::Bytes::from(bytes)) },
            ));
        s.objects.put(bucket, k, body, Some(ct)).await?;
    }
    let q = ProductQrCode {
        product_id,
        target,
        png_key,
        svg_key,
        created_at: chrono::Utc::now().timestamp_millis(),
    };
    s.actors.stores.media.send(msg::PutQrCode(q)).await?;
    Ok(match svg {
        true => qr_response(s, "image/svg+xml", svg_text.into_bytes()),
        false => qr_response(s, "image/png", png),
    })
}

fn qr_response(s: &AppState, content_type: &'static str, body: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        cache_headers(s),
        body,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/products/{id}/qrcode.png",
    tag = "media",
    operation_id = "product_qrcode_png",
    summary = "The product's QR code as PNG",
    description = "Encodes `media.qr_url_template` with `{id}` and `{ean}` filled in.",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The PNG.", content_type = "image/png", body = Vec<u8>), NotFound),
)]
async fn qrcode_png(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    qrcode(&s, &id, false).await
}

#[utoipa::path(
    get,
    path = "/products/{id}/qrcode.svg",
    tag = "media",
    operation_id = "product_qrcode_svg",
    summary = "The product's QR code as SVG",
    description = "Encodes `media.qr_url_template` with `{id}` and `{ean}` filled in.",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The SVG.", content_type = "image/svg+xml", body = String), NotFound),
)]
async fn qrcode_svg(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    qrcode(&s, &id, true).await
}
