//! The core database's queries on every backend.

use chrono::{Duration, Utc};
use pm_config::Database;
use pm_domain::Permission;
use uuid::Uuid;

use super::tokens::RefreshRejected;
use super::users::{NewUser, UserPatch};
use super::{token_hash, Core};
use crate::analytics::{Activity, Analytics};
use crate::testing::backends;
use crate::{Databases, StoreError};

async fn open(settings: &pm_config::Settings) -> (Databases, Core) {
    let dbs = Databases::open(settings).await.unwrap();
    let core = Core::new(dbs.get(Database::Core).clone());
    core.ensure_builtin_roles().await.unwrap();
    core.ensure_builtin_roles().await.unwrap();
    (dbs, core)
}

fn user(name: &str, roles: &[&str]) -> NewUser {
    NewUser {
        username: name.into(),
        email: Some(format!("{name}@example.com")),
        password_hash: "$argon2id$stub".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn users_roles_and_grants() {
    for env in backends() {
        let (dbs, core) = open(&env.settings).await;
        let l = env.label;
        let roles = core.list_roles().await.unwrap();
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["admin", "manager", "operator", "viewer"], "{l}");
        assert_eq!(roles[0].permissions.len(), Permission::ALL.len());

        assert_eq!(core.count_users().await.unwrap(), 0);
        let u = core
            .create_user(user("ann", &["viewer", "operator"]))
            .await
            .unwrap();
        assert_eq!(u.roles, ["operator", "viewer"], "{l}");
        assert!(u.is_active);
        let g = core.grants(u.id).await.unwrap();
        assert_eq!(
            g.permissions,
            [
                Permission::CatalogRead,
                Permission::CatalogReadCosts,
                Permission::ImportsRead,
                Permission::JobsRun
            ],
            "{l}"
        );

        let dup = core
            .create_user(NewUser {
                email: None,
                ..user("ann", &[])
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                dup,
                StoreError::Conflict {
                    field: "username",
                    ..
                }
            ),
            "{l}: {dup:?}"
        );
        let bad = core.create_user(user("bob", &["root"])).await.unwrap_err();
        assert!(
            matches!(bad, StoreError::Invalid { field: "roles", .. }),
            "{l}: {bad:?}"
        );
        assert_eq!(
            core.count_users().await.unwrap(),
            1,
            "a refused user leaves nothing behind"
        );
        let dup = core
            .create_user(NewUser {
                username: "ann2".into(),
                ..user("ann", &[])
            })
            .await
            .unwrap_err();
        assert!(
            matches!(dup, StoreError::Conflict { field: "email", .. }),
            "{l}: {dup:?}"
        );

        let patched = core
            .update_user(
                u.id,
                UserPatch {
                    roles: Some(vec!["manager".into()]),
                    is_active: Some(false),
                    email: Some(None),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(patched.roles, ["manager"]);
        assert!(!patched.is_active);
        assert_eq!(patched.email, None);
        let login = core.find_login("ann").await.unwrap().unwrap();
        assert!(!login.is_active);
        assert!(core.find_login("nobody").await.unwrap().is_none());

        // Custom roles: create, change, delete; built-in ones are fixed.
        let r = core
            .create_role("auditor", Some("reads"), &[Permission::CatalogRead])
            .await
            .unwrap();
        let r = core
            .update_role(
                r.id,
                None,
                Some(&[Permission::CatalogRead, Permission::ImportsRead]),
            )
            .await
            .unwrap();
        assert_eq!(r.permissions, [Permission::CatalogRead, Permission::ImportsRead]);
        assert!(matches!(
            core.create_role("auditor", None, &[]).await,
            Err(StoreError::Conflict { .. })
        ));
        let admin = roles.iter().find(|r| r.name == "admin").unwrap();
        assert!(matches!(
            core.delete_role(admin.id).await,
            Err(StoreError::Invalid { .. })
        ));
        core.delete_role(r.id).await.unwrap();

        for i in 0..4 {
            core.create_user(user(&format!("u{i}"), &["viewer"]))
                .await
                .unwrap();
        }
        let p1 = core.list_users(3, None).await.unwrap();
        let p2 = core.list_users(3, p1.next_cursor.as_deref()).await.unwrap();
        assert_eq!(p1.items.len() + p2.items.len(), 5);
        assert!(p2.next_cursor.is_none());
        core.delete_user(u.id).await.unwrap();
        assert!(matches!(
            core.get_user(u.id).await,
            Err(StoreError::NotFound { .. })
        ));
        dbs.close().await;
        env.cleanup().await;
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_once_and_reuse_revokes_the_family() {
    for env in backends() {
        let (dbs, core) = open(&env.settings).await;
        let l = env.label;
        let u = core.create_user(user("tok", &["viewer"])).await.unwrap();
        let family = Uuid::now_v7();
        let exp = Utc::now() + Duration::days(30);
        core.insert_refresh_token(u.id, family, &token_hash("t1"), exp)
            .await
            .unwrap();

        let r = core
            .rotate_refresh_token(&token_hash("t1"), &token_hash("t2"), exp)
            .await
            .unwrap();
        assert_eq!(
            r,
            Ok(super::tokens::Rotated {
                user_id: u.id,
                family_id: family
            }),
            "{l}"
        );
        // t1 again: reuse. The family, t2 included, is revoked.
        let r = core
            .rotate_refresh_token(&token_hash("t1"), &token_hash("t3"), exp)
            .await
            .unwrap();
        assert_eq!(r, Err(RefreshRejected::Reused), "{l}");
        let r = core
            .rotate_refresh_token(&token_hash("t2"), &token_hash("t4"), exp)
            .await
            .unwrap();
        // t2 was never used: it was revoked with its family.
        assert_eq!(r, Err(RefreshRejected::Revoked), "{l}");
        let r = core
            .rotate_refresh_token(&token_hash("nope"), &token_hash("t5"), exp)
            .await
            .unwrap();
        assert_eq!(r, Err(RefreshRejected::Unknown));

        // Expired tokens are refused.
        core.insert_refresh_token(
            u.id,
            Uuid::now_v7(),
            &token_hash("old"),
            Utc::now() - Duration::seconds(1),
        )
        .await
        .unwrap();
        let r = core
            .rotate_refresh_token(&token_hash("old"), &token_hash("t6"), exp)
            .await
            .unwrap();
        assert_eq!(r, Err(RefreshRejected::Expired), "{l}");

        // Logout revokes the family.
        core.insert_refresh_token(u.id, Uuid::now_v7(), &token_hash("s1"), exp)
            .await
            .unwrap();
        assert!(core.revoke_refresh_family(&token_hash("s1")).await.unwrap());
        assert!(!core.revoke_refresh_family(&token_hash("zz")).await.unwrap());
        let r = core
            .rotate_refresh_token(&token_hash("s1"), &token_hash("s2"), exp)
            .await
            .unwrap();
        assert_eq!(r, Err(RefreshRejected::Revoked), "{l}");
        dbs.close().await;
        env.cleanup().await;
    }
}

#[tokio::test]
async fn api_keys_settings_notifications_and_activity() {
    for env in backends() {
        let (dbs, core) = open(&env.settings).await;
        let l = env.label;
        let u = core.create_user(user("ops", &["admin"])).await.unwrap();

        let k = core
            .create_api_key(
                "shop sync",
                "abcd1234",
                &token_hash("k"),
                &[Permission::CatalogRead],
                Some(u.id),
                None,
            )
            .await
            .unwrap();
        let found = core.api_key_by_prefix("abcd1234").await.unwrap().unwrap();
        assert_eq!(found.key_hash, token_hash("k"));
        assert_eq!(found.scopes, [Permission::CatalogRead], "{l}");
        assert!(found.is_live(Utc::now()));
        core.touch_api_key(k.id).await.unwrap();
        core.revoke_api_key(k.id).await.unwrap();
        assert!(!core
            .api_key_by_prefix("abcd1234")
            .await
            .unwrap()
            .unwrap()
            .is_live(Utc::now()));
        assert_eq!(core.list_api_keys().await.unwrap().len(), 1);

        let v = serde_json::json!({"currency": "EUR", "limits": [1, 2]});
        core.put_setting("defaults", &v, Some(u.id)).await.unwrap();
        core.put_setting("defaults", &serde_json::json!(42), None)
            .await
            .unwrap();
        let s = core.list_settings().await.unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, serde_json::json!(42), "{l}");
        core.delete_setting("defaults").await.unwrap();
        assert!(matches!(
            core.delete_setting("defaults").await,
            Err(StoreError::NotFound { .. })
        ));

        let other = core.create_user(user("other", &[])).await.unwrap();
        let n1 = core
            .notify(u.id, "import", "import done", Some("1200 rows"))
            .await
            .unwrap();
        core.notify(u.id, "import", "import failed", None).await.unwrap();
        let list = core.list_notifications(u.id, false, 10, None).await.unwrap();
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.items[0].title, "import failed", "newest first");
        assert!(matches!(
            core.mark_notification_read(other.id, n1).await,
            Err(StoreError::NotFound { .. })
        ));
        core.mark_notification_read(u.id, n1).await.unwrap();
        assert_eq!(
            core.list_notifications(u.id, true, 10, None)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        assert_eq!(core.mark_all_notifications_read(u.id).await.unwrap(), 1);
        assert_eq!(
            core.list_notifications(u.id, true, 10, None)
                .await
                .unwrap()
                .items
                .len(),
            0
        );

        let analytics = Analytics::new(dbs.get(Database::Analytics).clone());
        let a = Activity {
            id: Uuid::now_v7(),
            user_id: Some(u.id),
            api_key_id: None,
            actor_name: "ops".into(),
            action: "create".into(),
            entity: "product".into(),
            entity_id: Some("p1".into()),
            request_id: Some("r1".into()),
            // PostgreSQL keeps microseconds.
            at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
        };
        analytics.record_activity(&a).await.unwrap();
        assert_eq!(
            analytics.recent_activity(Some("p1"), 10).await.unwrap(),
            std::slice::from_ref(&a),
            "{l}"
        );
        assert!(analytics
            .recent_activity(Some("p2"), 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(analytics.recent_activity(None, 10).await.unwrap().len(), 1);
        dbs.close().await;
        env.cleanup().await;
    }
}
