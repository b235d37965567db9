//! Object storage through the application: signed download links of the filesystem store, and
//! start-up on a real S3 server.

use std::time::Duration;

use bytes::Bytes;
use pm_storage::object_store::fs::FsStore;
use pm_storage::ObjectStore;

use crate::helpers::{spawn_app, spawn_app_with, Backend};

#[tokio::test]
async fn signed_links_download_and_tampered_or_expired_ones_do_not() {
    let app = spawn_app(Backend::Sqlite).await;
    // The same store the app uses: same directory, same link secret.
    let store = FsStore::new(
        app.settings.storage.data_dir.join("objects"),
        Some(b"test-link-secret".to_vec()),
        1 << 20,
    );
    let body: pm_storage::object_store::ByteStream = Box::pin(futures::stream::iter(vec![Ok(
        Bytes::from_static(b"product image bytes"),
    )]));
    store
        .put("product-images", "products/ab/x/h.jpg", body, Some("image/jpeg"))
        .await
        .unwrap();
    let link = store
        .download_url("product-images", "products/ab/x/h.jpg", Duration::from_secs(60))
        .await
        .unwrap();

    let r = app.client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(&r.bytes().await.unwrap()[..], b"product image bytes");

    let tampered = link.replace("h.jpg", "i.jpg");
    assert_eq!(
        app.client.get(app.url(&tampered)).send().await.unwrap().status(),
        404
    );
    let expired = link.replace("expires=", "expires=1");
    assert_eq!(
        app.client.get(app.url(&expired)).send().await.unwrap().status(),
        404
    );
    let unsigned = link.split('?').next().unwrap().to_owned();
    assert_eq!(
        app.client.get(app.url(&unsigned)).send().await.unwrap().status(),
        422
    );
    app.stop().await;
}

#[tokio::test]
async fn the_app_starts_on_s3_and_creates_its_buckets() {
    let Some(endpoint) = pm_config::testenv::test_server("PM_TEST_S3_ENDPOINT") else {
        return;
    };
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        let o = &mut s.object_store;
        o.backend = pm_config::ObjectStoreBackend::S3;
        o.s3.endpoint = Some(endpoint.clone());
        o.s3.access_key_id = Some(std::env::var("PM_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "test".into()));
        o.s3.secret_access_key = Some(pm_config::Secret::new(
            std::env::var("PM_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "test".into()),
        ));
        o.buckets.imports = format!("imports-{run}");
    })
    .await;
    let s3 = pm_storage::object_store::s3::S3Store::new(&app.settings.object_store.s3, 1 << 20).unwrap();
    // The bucket exists: listing it succeeds (a missing bucket is an error).
    assert!(s3.list(&format!("imports-{run}"), "").await.unwrap().is_empty());
    app.stop().await;
}
