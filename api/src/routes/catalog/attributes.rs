//! Typed attributes of a product, one value per key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeleteAttribute, ListAttributes, SetAttribute};
use pm_domain::{Decimal, Permission};
use pm_storage::catalog::{Attribute, AttributeValue};
use serde::Deserialize;

use super::{path_id, Body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products/{id}/attributes", get(list))
        .route("/products/{id}/attributes/{key}", put(set).delete(remove))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Type {
    String,
    Number,
    Boolean,
    Json,
}

/// `{"type": "number", "value": "0.1"}`: numbers are exact decimals in strings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeBody {
    #[serde(rename = "type")]
    kind: Type,
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
