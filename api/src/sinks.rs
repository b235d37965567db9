//! What the edge keeps that writes make stale, and the [`ChangeSink`] that drops it: the
//! response cache (by entity) and the API key cache. Registered on the change bus at start,
//! so every committed write, from any route, job or import, invalidates before it answers.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::BoxFuture;
use pm_actors::changes::{Change, ChangeSink, Entity};
use pm_storage::cache::{Cache, Kind};
use pm_storage::core::api_keys::ApiKey;

/// Beyond this many product ids in one batch, the whole product kind is dropped (O(1)) rather
/// than id by id: a bulk batch invalidates once, not per item.
const PER_ID: usize = 50;

/// API keys by prefix, so that a request with a key costs no database round trip. Entries
/// live a minute at most; any change to an API key (created, revoked) empties it.
#[derive(Clone)]
pub struct ApiKeyCache {
    keys: moka::future::Cache<String, Option<ApiKey>>,
    /// Keys whose `last_used_at` was written in the last minute: the write is made at most
    /// once a minute per key, not once per request.
    touched: moka::future::Cache<uuid::Uuid, ()>,
}

impl Default for ApiKeyCache {
    fn default() -> Self {
        Self {
            keys: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            touched: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }
}

impl ApiKeyCache {
    pub async fn get(&self, prefix: &str) -> Option<Option<ApiKey>> {
        self.keys.get(prefix).await
    }

    pub async fn insert(&self, prefix: String, key: Option<ApiKey>) {
        self.keys.insert(prefix, key).await;
    }

    /// Whether `last_used_at` of `id` is due for a write (true at most once a minute).
    pub async fn touch_due(&self, id: uuid::Uuid) -> bool {
        if self.touched.contains_key(&id) {
            return false;
        }
        self.touched.insert(id, ()).await;
        true
    }

    pub fn clear(&self) {
        self.keys.invalidate_all();
    }
}

/// Users' token generations, so that checking an access token against revocation costs a
/// database round trip at most once per user per `auth.revocation_check_secs` (2 s): a
/// revocation on another instance reaches this one within that, and one on this instance at
/// once (the change bus forgets the user's entry).
#[derive(Clone)]
pub struct Generations(moka::future::Cache<uuid::Uuid, Option<i64>>);

impl Generations {
    pub fn new(ttl: Duration) -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl.max(Duration::from_millis(100)))
                .build(),
        )
    }

    /// The user's current generation (`None`: no such user), from the cache or `load`.
    pub async fn get<E>(
        &self,
        user: uuid::Uuid,
        load: impl std::future::Future<Output = Result<Option<i64>, E>>,
    ) -> Result<Option<i64>, E> {
        if let Some(g) = self.0.get(&user).await {
            return Ok(g);
        }
        let g = load.await?;
        self.0.insert(user, g).await;
        Ok(g)
    }

    /// Awaited: the caller's answer (a logout's 204) must not come before the entry is gone, or
    /// the client's next request may still pass with the revoked token.
    pub async fn forget(&self, user: uuid::Uuid) {
        self.0.invalidate(&user).await;
    }
}

/// Drops what a batch of changes made stale.
pub struct EdgeCaches {
    pub cache: Cache,
    pub api_keys: ApiKeyCache,
    pub generations: Generations,
}

/// The product a sub-resource change is about: its id is the product's, or starts the key
/// (`<product>/<attribute>`).
fn product_of(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

impl ChangeSink for EdgeCaches {
    fn apply<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut kinds = BTreeSet::new();
            let mut products: BTreeSet<&str> = BTreeSet::new();
            for c in changes {
                match c.entity {
                    Entity::Product => {
                        products.extend(c.ids.iter().map(String::as_str));
                        kinds.insert(Kind::SearchResults);
                    }
                    Entity::Attribute | Entity::Variant | Entity::Bundle | Entity::Seo => {
                        products.extend(c.ids.iter().map(|i| product_of(i)));
                        kinds.insert(Kind::SearchResults);
                    }
                    Entity::Category => {
                        kinds.insert(Kind::Categories);
                        kinds.insert(Kind::SearchResults);
                    }
                    Entity::Brand => {
                        kinds.insert(Kind::Brands);
                    }
                    Entity::Supplier => {
                        kinds.insert(Kind::Suppliers);
                        kinds.insert(Kind::SearchResults);
                    }
                    Entity::SupplierProduct | Entity::Price | Entity::Stock => {
                        kinds.insert(Kind::SearchResults);
                    }
                    Entity::ApiKey => self.api_keys.clear(),
                    Entity::User => {
                        for id in &c.ids {
                            if let Ok(u) = uuid::Uuid::try_parse(id) {
                                self.generations.0.invalidate(&u).await;
                            }
                        }
                    }
                    // A role's permissions changed: its users' tokens carry the old ones.
                    Entity::Role => self.generations.0.invalidate_all(),
                    Entity::Setting => {}
                }
            }
            if products.len() > PER_ID
                || changes
                    .iter()
                    .any(|c| c.entity == Entity::Product && c.action == "purge")
            {
                kinds.insert(Kind::Products);
            } else {
                for id in products {
                    self.cache.invalidate(Kind::Products, id).await;
                }
            }
            for kind in kinds {
                self.cache.invalidate_kind(kind).await;
            }
        })
    }
}
