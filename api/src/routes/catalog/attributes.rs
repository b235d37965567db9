//! Typed attributes of a product, one value per key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeleteAttribute, ListAttributes, SetAttribute};
use pm_domain::{Decimal, Permission};
use pm_storage::catalog::{Attribute, AttributeValue};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, Body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::openapi::NotFound;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set, remove))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AttributeType)]
enum Type {
    String,
    Number,
    Boolean,
    Json,
}

/// `{"type": "number", "value": "0.1"}`: numbers are exact decimals in strings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AttributeSet)]
struct AttributeBody {
    #[serde(rename = "type")]
    kind: Type,
    /// A string for `string`, a decimal in a string for `number`, true or false for
    /// `boolean`, any JSON value for `json`.
    value: serde_json::Value,
}

/// A decimal in a string, with the domain's messages for anything else.
#[derive(Deserialize)]
struct Number(#[serde(with = "pm_domain::money::decimal_str")] Decimal);

impl AttributeBody {
    fn value(self) -> Result<AttributeValue, ApiError> {
        let wrong = |e: serde_json::Error| ApiError::invalid("value", e);
        Ok(match self.kind {
            Type::String => AttributeValue::String(serde_json::from_value(self.value).map_err(wrong)?),
            Type::Number => {
                AttributeValue::Number(serde_json::from_value::<Number>(self.value).map_err(wrong)?.0)
            }
            Type::Boolean => AttributeValue::Boolean(serde_json::from_value(self.value).map_err(wrong)?),
            Type::Json => AttributeValue::Json(self.value),
        })
    }
}

#[utoipa::path(
    get,
    path = "/products/{id}/attributes",
    tag = "attributes",
    operation_id = "list_attributes",
    summary = "List the attributes of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The product's attributes.", body = Vec<Attribute>), NotFound),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Attribute>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    Ok(Json(
        s.actors
            .stores
            .catalog
            .send(ListAttributes { product_id })
            .await?,
    ))
}

/// Creates or replaces one attribute.
#[utoipa::path(
    put,
    path = "/products/{id}/attributes/{key}",
    tag = "attributes",
    operation_id = "set_attribute",
    summary = "Set an attribute",
    params(("id" = Uuid, Path, description = "The product's id."), ("key" = String, Path, description = "The attribute's key.", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    request_body = AttributeBody,
    responses((status = 200, description = "The attribute as stored.", body = Attribute), NotFound),
)]
async fn set(
    State(s): State<AppState>,
    who: Principal,
    Path((id, key)): Path<(String, String)>,
    Body(b): Body<AttributeBody>,
) -> Result<Json<Attribute>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let msg = SetAttribute {
        product_id,
        key: key.clone(),
        value: b.value()?,
    };
    let attribute = s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(Json(attribute))
}

#[utoipa::path(
    delete,
    path = "/products/{id}/attributes/{key}",
    tag = "attributes",
    operation_id = "delete_attribute",
    summary = "Delete an attribute",
    params(("id" = Uuid, Path, description = "The product's id."), ("key" = String, Path, description = "The attribute's key.", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let msg = DeleteAttribute {
        product_id,
        key: key.clone(),
    };
    s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(StatusCode::NO_CONTENT)
}
