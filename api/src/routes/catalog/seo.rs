//! Search-engine fields of a product, and the product of a URL slug.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeleteSeo, GetSeo, SeoBySlug, SetSeo};
use pm_domain::Permission;
use pm_storage::catalog::{NewSeo, Seo};
use serde::Deserialize;

use super::{path_id, Body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products/{id}/seo", get(read).put(set).delete(remove))
        .route("/seo/{slug}", get(by_slug))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeoBody {
    slug: String,
    meta_title: Option<String>,
    meta_description: Option<String>,
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Seo>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    Ok(Json(s.actors.stores.catalog.send(GetSeo { product_id }).await?))
}

/// Sets (creates or replaces) the SEO fields; a slug another product uses is a conflict.
async fn set(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<SeoBody>,
) -> Result<Json<Seo>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let seo = NewSeo {
        slug: b.slug,
        meta_title: b.meta_title,
        meta_description: b.meta_description,
    };
    let seo = s
        .actors
        .stores
        .catalog
        .send(SetSeo { product_id, seo }.by(who.origin()))
        .await?;
    Ok(Json(seo))
}

async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    s.actors
        .stores
        .catalog
        .send(DeleteSeo { product_id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The SEO fields (and so the product id) of a slug.
async fn by_slug(
    State(s): State<AppState>,
    who: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Seo>, ApiError> {
    who.require(Permission::CatalogRead)?;
    Ok(Json(s.actors.stores.catalog.send(SeoBySlug { slug }).await?))
}
