//! The core store actor: users, roles, tokens, API keys, settings, notifications.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pm_domain::Permission;
use pm_storage::catalog::Page;
use pm_storage::core::api_keys::ApiKey;
use pm_storage::core::notifications::Notification;
use pm_storage::core::roles::Role;
use pm_storage::core::settings::AppSetting;
use pm_storage::core::tokens::{RefreshRejected, Rotated};
use pm_storage::core::users::{Grants, LoginRecord, NewUser, User, UserPatch};
use pm_storage::core::Core;
use pm_storage::StoreError;
use pm_supervisors::{Behaviour, Ctx, Handles, Reply};
use uuid::Uuid;

use super::Ping;
use crate::changes::{Change, ChangeBus, Entity};

pub struct CoreStore {
    core: Core,
    /// Every write's changes go here after its commit.
    bus: ChangeBus,
}

impl CoreStore {
    pub fn new(core: Core, bus: ChangeBus) -> Self {
        Self { core, bus }
    }
}

impl Behaviour for CoreStore {
    fn observe(&self) -> serde_json::Value {
        super::observe(self.core.db())
    }
}

impl Handles<Ping> for CoreStore {
    type Ok = Duration;
    type Err = StoreError;
    fn handle(&mut self, _: Ping, _ctx: &Ctx<Self>) -> Reply<Result<Duration, StoreError>> {
        super::ping(self.core.db())
    }
}

/// Implements `Handles<$msg>` by running one `Core` query on the worker pool.
macro_rules! query {
    ($msg:ident => $ok:ty, |$c:ident, $m:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $msg;
        query!(@impl $msg => $ok, |$c, $m| $body);
    };
    ($msg:ident { $($field:ident : $ty:ty),* $(,)? } => $ok:ty, |$c:ident, $m:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $msg { $(pub $field: $ty),* }
        query!(@impl $msg => $ok, |$c, $m| $body);
    };
    (@impl $msg:ident => $ok:ty, |$c:ident, $m:ident| $body:expr) => {
        impl Handles<$msg> for CoreStore {
            type Ok = $ok;
            type Err = StoreError;
            fn is_failure(e: &StoreError) -> bool {
                !e.is_callers()
            }
            #[allow(unused_variables)]
            fn handle(&mut self, $m: $msg, _ctx: &Ctx<Self>) -> Reply<Result<$ok, StoreError>> {
                let $c = self.core.clone();
                Reply::spawn(async move { $body })
            }
        }
    };
}

/// Like `query!` for a write: declares the message, handled only as `Write<$msg>`, and
/// publishes one change of `$entity` after the commit (see `super::catalog_entities`).
macro_rules! write_msg {
    ($msg:ident { $($field:ident : $ty:ty),* $(,)? } => $ok:ty, $entity:ident $action:literal key($key:expr), |$c:ident, $m:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $msg { $(pub $field: $ty),* }

        super::write_handler!(CoreStore, core, $msg => $ok, |$c, $m| {
            let key = { let $m = &$m; ($key).to_string() };
            let ok: $ok = { $body }?;
            Ok((ok, vec![Change::one(Entity::$entity, $action, key)]))
        });
    };
    ($msg:ident { $($field:ident : $ty:ty),* $(,)? } => $ok:ty, $entity:ident $action:literal result(|$r:ident| $rkey:expr), |$c:ident, $m:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $msg { $(pub $field: $ty),* }

        super::write_handler!(CoreStore, core, $msg => $ok, |$c, $m| {
            let ok: $ok = { $body }?;
            let key = { let $r = &ok; ($rkey).to_string() };
            Ok((ok, vec![Change::one(Entity::$entity, $action, key)]))
        });
    };
}

query!(EnsureBuiltinRoles => (), |c, m| c.ensure_builtin_roles().await);
query!(CountUsers => i64, |c, m| c.count_users().await);
write_msg!(CreateUser { user: NewUser } => User, User "create" result(|r| r.id), |c, m| c.create_user(m.user).await);
query!(GetUser { id: Uuid } => User, |c, m| c.get_user(m.id).await);
query!(ListUsers { limit: u32, cursor: Option<String> } => Page<User>, |c, m| c.list_users(m.limit, m.cursor.as_deref()).await);
write_msg!(UpdateUser { id: Uuid, patch: UserPatch } => User, User "update" key(m.id), |c, m| c.update_user(m.id, m.patch).await);
write_msg!(DeleteUser { id: Uuid } => (), User "delete" key(m.id), |c, m| c.delete_user(m.id).await);
query!(FindLogin { username: String } => Option<LoginRecord>, |c, m| c.find_login(&m.username).await);
query!(GetGrants { id: Uuid } => Grants, |c, m| c.grants(m.id).await);
query!(TouchLogin { id: Uuid } => (), |c, m| c.touch_login(m.id).await);
query!(TokenGeneration { id: Uuid } => Option<i64>, |c, m| c.token_generation(m.id).await);
query!(BumpTokenGeneration { id: Uuid } => (), |c, m| c.bump_token_generation(m.id).await);

query!(ListRoles => Vec<Role>, |c, m| c.list_roles().await);
write_msg!(CreateRole { name: String, description: Option<String>, permissions: Vec<Permission> } => Role, Role "create" result(|r| r.id),
    |c, m| c.create_role(&m.name, m.description.as_deref(), &m.permissions).await);
write_msg!(UpdateRole { id: Uuid, description: Option<Option<String>>, permissions: Option<Vec<Permission>> } => Role, Role "update" key(m.id),
    |c, m| c.update_role(m.id, m.description.as_ref().map(|d| d.as_deref()), m.permissions.as_deref()).await);
write_msg!(DeleteRole { id: Uuid } => (), Role "delete" key(m.id), |c, m| c.delete_role(m.id).await);

query!(InsertRefreshToken { user_id: Uuid, family_id: Uuid, token_hash: String, expires_at: DateTime<Utc> } => (),
    |c, m| c.insert_refresh_token(m.user_id, m.family_id, &m.token_hash, m.expires_at).await);
query!(RotateRefreshToken { old_hash: String, new_hash: String, expires_at: DateTime<Utc> } => Result<Rotated, RefreshRejected>,
    |c, m| c.rotate_refresh_token(&m.old_hash, &m.new_hash, m.expires_at).await);
query!(RevokeRefreshFamily { token_hash: String } => bool, |c, m| c.revoke_refresh_family(&m.token_hash).await);
query!(RevokeUserTokens { user_id: Uuid } => (), |c, m| c.revoke_user_tokens(m.user_id).await);

write_msg!(CreateApiKey { name: String, prefix: String, key_hash: String, scopes: Vec<Permission>, created_by: Option<Uuid>, expires_at: Option<DateTime<Utc>> } => ApiKey, ApiKey "create" result(|r| r.id),
    |c, m| c.create_api_key(&m.name, &m.prefix, &m.key_hash, &m.scopes, m.created_by, m.expires_at).await);
query!(ApiKeyByPrefix { prefix: String } => Option<ApiKey>, |c, m| c.api_key_by_prefix(&m.prefix).await);
query!(ListApiKeys => Vec<ApiKey>, |c, m| c.list_api_keys().await);
write_msg!(RevokeApiKey { id: Uuid } => (), ApiKey "revoke" key(m.id), |c, m| c.revoke_api_key(m.id).await);
query!(TouchApiKey { id: Uuid } => (), |c, m| c.touch_api_key(m.id).await);

query!(ListSettings => Vec<AppSetting>, |c, m| c.list_settings().await);
write_msg!(PutSetting { key: String, value: serde_json::Value, by: Option<Uuid> } => AppSetting, Setting "update" key(m.key),
    |c, m| c.put_setting(&m.key, &m.value, m.by).await);
write_msg!(DeleteSetting { key: String } => (), Setting "delete" key(m.key), |c, m| c.delete_setting(&m.key).await);

/// Creates a notification for a user and pushes it to them live (`notifications.<user id>`).
#[derive(Debug)]
pub struct Notify {
    pub user_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: Option<String>,
}

impl Handles<Notify> for CoreStore {
    type Ok = Uuid;
    type Err = StoreError;
    fn handle(&mut self, m: Notify, _ctx: &Ctx<Self>) -> Reply<Result<Uuid, StoreError>> {
        let (c, hub) = (self.core.clone(), self.bus.hub().clone());
        Reply::spawn(async move {
            let id = c.notify(m.user_id, &m.kind, &m.title, m.body.as_deref()).await?;
            hub.publish(
                format!("notifications.{}", m.user_id),
                "notification",
                serde_json::json!({ "id": id, "kind": m.kind, "title": m.title, "body": m.body }),
            );
            Ok(id)
        })
    }
}
query!(ListNotifications { user_id: Uuid, unread_only: bool, limit: u32, cursor: Option<String> } => Page<Notification>,
    |c, m| c.list_notifications(m.user_id, m.unread_only, m.limit, m.cursor.as_deref()).await);
query!(MarkNotificationRead { user_id: Uuid, id: Uuid } => (), |c, m| c.mark_notification_read(m.user_id, m.id).await);
query!(MarkAllNotificationsRead { user_id: Uuid } => u64, |c, m| c.mark_all_notifications_read(m.user_id).await);

// Amazon SP-API accounts (Code2ASIN); secrets arrive encrypted.
query!(CreateAmazonAccount { account: pm_storage::core::amazon::NewAmazonAccount } => pm_storage::core::amazon::AmazonAccount, |c, m| c.create_amazon_account(&m.account).await);
query!(ListAmazonAccounts => Vec<pm_storage::core::amazon::AmazonAccount>, |c, m| c.amazon_accounts().await);
query!(GetAmazonAccount { id: Uuid } => Option<pm_storage::core::amazon::AmazonAccountSecrets>, |c, m| c.amazon_account(m.id).await);
query!(DeleteAmazonAccount { id: Uuid } => (), |c, m| c.delete_amazon_account(m.id).await);
