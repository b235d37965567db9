//! Brands: the curated list supplier spellings map to.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{CreateBrand, DeleteBrand, GetBrand, ListBrands, UpdateBrand};
use pm_domain::Permission;
use pm_storage::cache::Kind;
use pm_storage::catalog::{Brand, BrandPatch, NewBrand};
use serde::Deserialize;

use super::{cached, page_key, page_limit, path_id, Body, PageQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/brands", get(list).post(create))
        .route("/brands/{id}", get(read).patch(update).delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// Absent: derived from the name (`Électroménager` → `electromenager`), made unique.
    slug: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: Option<String>,
    slug: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Brand>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let brand = NewBrand {
        name: b.name,
        slug: b.slug,
    };
    let brand = s
        .actors
        .stores
        .catalog
        .send(CreateBrand { brand }.by(who.origin()))
        .await?;
    Ok((StatusCode::CREATED, Json(brand)))
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = path_id("id", &id)?;
    cached(&s, Kind::Brands, &id.to_string(), async {
        Ok(s.actors.stores.catalog.send(GetBrand { id }).await?)
    })
    .await
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchBody>,
) -> Result<Json<Brand>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    let patch = BrandPatch {
        name: b.name,
        slug: b.slug,
    };
    let brand = s
        .actors
        .stores
        .catalog
        .send(UpdateBrand { id, patch }.by(who.origin()))
        .await?;
    Ok(Json(brand))
}

async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    s.actors
        .stores
        .catalog
        .send(DeleteBrand { id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let limit = page_limit(q.limit)?;
    let key = page_key("list", limit, q.cursor.as_deref());
    cached(&s, Kind::Brands, &key, async {
        let msg = ListBrands {
            limit,
            cursor: q.cursor,
        };
        Ok(s.actors.stores.catalog.send(msg).await?)
    })
    .await
}
