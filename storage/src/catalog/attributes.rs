//! Typed attributes of a product: one value per key, a string, an exact number, a boolean or
//! any JSON.

use chrono::{DateTime, Utc};
use pm_domain::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{code, invalid, not_found, now, RowExt};
use super::Catalog;
use crate::{with_conn, StoreError};

/// An attribute value. Numbers are exact decimals (serialised as strings), so `0.1` stays
/// `0.1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum AttributeValue {
    String(String),
    #[serde(with = "pm_domain::money::decimal_str")]
    #[schema(value_type = pm_domain::schema::DecimalString)]
    Number(Decimal),
    Boolean(bool),
    Json(serde_json::Value),
}

impl AttributeValue {
    fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Number(_) => "number",
            Self::Boolean(_) => "boolean",
            Self::Json(_) => "json",
        }
    }

    /// The value as stored in the `value` column.
    fn to_text(&self) -> String {
        match self {
            Self::String(s) => s.clone(),
            Self::Number(d) => d.normalize().to_string(),
            Self::Boolean(b) => b.to_string(),
            Self::Json(v) => v.to_string(),
        }
    }

    fn from_text(kind: &str, text: String) -> Result<Self, StoreError> {
        let corrupt = |e: String| StoreError::Corrupt(format!("attribute value {text:?}: {e}"));
        Ok(match kind {
            "string" => Self::String(text),
            "number" => Self::Number(Decimal::from_str_exact(&text).map_err(|e| corrupt(e.to_string()))?),
            "boolean" => Self::Boolean(
                text.parse()
                    .map_err(|e: std::str::ParseBoolError| corrupt(e.to_string()))?,
            ),
            "json" => Self::Json(serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?),
            other => return Err(corrupt(format!("unknown type {other}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attribute {
    pub key: String,
    #[serde(flatten)]
    pub value: AttributeValue,
    pub updated_at: DateTime<Utc>,
}

fn attribute_from_row(r: &impl RowExt) -> Result<Attribute, StoreError> {
    let kind: String = r.col("value_type")?;
    Ok(Attribute {
        key: r.col("key")?,
        value: AttributeValue::from_text(&kind, r.col("value")?)?,
        updated_at: r.col("updated_at")?,
    })
}

/// Attribute keys: `colour`, `screen_size`, `energy.class`.
fn key(k: &str) -> Result<String, StoreError> {
    code("key", k, 64)
}

impl Catalog {
    /// Sets (creates or replaces) one attribute of a product.
    pub async fn set_attribute(
        &self,
        product_id: Uuid,
        key: &str,
        value: AttributeValue,
    ) -> Result<Attribute, StoreError> {
        let key = self::key(key)?;
        if let AttributeValue::String(s) = &value {
            if s.chars().count() > 4000 {
                return Err(invalid("value", "must be at most 4000 characters"));
            }
        }
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(
                    "INSERT INTO product_attributes (product_id, key, value_type, value, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (product_id, key) DO UPDATE SET \
                     value_type = excluded.value_type, value = excluded.value, updated_at = excluded.updated_at \
                     RETURNING key, value_type, value, updated_at",
                )
                .bind(product_id)
                .bind(&key)
                .bind(value.type_name())
                .bind(value.to_text())
                .bind(now())
                .fetch_one(&mut *conn)
                .await?;
                attribute_from_row(&row)
            })
        }
        .await;
        let refs = [("product_id", "products", product_id)];
        self.explain(res, || invalid("key", "conflict"), &refs).await
    }

    /// The attributes of a product, by key.
    pub async fn attributes(&self, product_id: Uuid) -> Result<Vec<Attribute>, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT key, value_type, value, updated_at FROM product_attributes WHERE product_id = $1 ORDER BY key",
            )
            .bind(product_id)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(attribute_from_row)
                .collect::<Result<Vec<_>, _>>()?
        }))
    }

    pub async fn delete_attribute(&self, product_id: Uuid, key: &str) -> Result<(), StoreError> {
        let done = with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM product_attributes WHERE product_id = $1 AND key = $2")
                .bind(product_id)
                .bind(key)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(not_found("attribute", format!("{product_id}/{key}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::common::testing::{assert_invalid, open, product};
    use crate::testing::backends;

    #[tokio::test]
    async fn typed_attributes_round_trip() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let pid = product(&cat, "Tab").await;
            let values = [
                ("colour", AttributeValue::String("red".into())),
                (
                    "screen_in",
                    AttributeValue::Number(Decimal::from_str_exact("10.1").unwrap()),
                ),
                ("waterproof", AttributeValue::Boolean(false)),
                (
                    "ports",
                    AttributeValue::Json(serde_json::json!(["usb-c", {"hdmi": 2}])),
                ),
            ];
            for (k, v) in &values {
                let a = cat.set_attribute(pid, k, v.clone()).await.unwrap();
                assert_eq!(&a.value, v, "{l}");
            }
            // Replacing changes the type too.
            cat.set_attribute(pid, "colour", AttributeValue::Boolean(true))
                .await
                .unwrap();
            let got = cat.attributes(pid).await.unwrap();
            let got: Vec<_> = got.iter().map(|a| (a.key.as_str(), a.value.clone())).collect();
            assert_eq!(got[0], ("colour", AttributeValue::Boolean(true)), "{l}");
            // By key: colour, ports, screen_in, waterproof.
            assert_eq!(
                got[1..],
                [values[3].clone(), values[1].clone(), values[2].clone()],
                "{l}"
            );
            let json = serde_json::to_value(&got[2].1).unwrap();
            assert_eq!(json, serde_json::json!({"type": "number", "value": "10.1"}));
            assert_invalid(
                cat.set_attribute(pid, "bad key", AttributeValue::Boolean(true))
                    .await,
                "key",
                l,
            );
            assert_invalid(
                cat.set_attribute(Uuid::now_v7(), "k", AttributeValue::Boolean(true))
                    .await,
                "product_id",
                l,
            );
            cat.delete_attribute(pid, "colour").await.unwrap();
            assert!(matches!(
                cat.delete_attribute(pid, "colour").await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(cat.attributes(pid).await.unwrap().len(), 3, "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
