//! Product images (issue 9): uploads sniffed and stored once per product, thumbnails made by
//! `media.thumbnails` jobs (rotation from EXIF, alpha flattened), bad files refused or failed
//! with their reason, ordering, deletion with the objects, reprocessing and QR codes. Every
//! image is generated here.

use std::io::Cursor;
use std::sync::Arc;

use exif::{Field, In, Tag, Value as ExifValue};
use image::ImageEncoder;
use pm_storage::ObjectStore;
use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app_with, Backend, TestApp};

const RED: [u8; 3] = [230, 20, 20];
const BLUE: [u8; 3] = [20, 40, 220];

/// A `w` x `h` JPEG, red on the left half and blue on the right, with an EXIF block holding
/// orientation `orientation`, a camera make and a GPS latitude (never to be kept).
fn oriented_jpeg(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for _ in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(if x < w / 2 { &RED } else { &BLUE });
        }
    }
    let img = turbojpeg::Image {
        pixels: &rgb[..],
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    let jpeg = turbojpeg::compress(img, 92, turbojpeg::Subsamp::Sub2x2)
        .unwrap()
        .to_vec();
    let field = |tag, value| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    };
    let mut writer = exif::experimental::Writer::new();
    let fields = [
        field(Tag::Orientation, ExifValue::Short(vec![orientation])),
        field(Tag::Make, ExifValue::Ascii(vec![b"Acme".to_vec()])),
        field(
            Tag::GPSLatitude,
            ExifValue::Rational(vec![(48, 1).into(), (51, 1).into(), (0, 1).into()]),
        ),
    ];
    for f in &fields {
        writer.push_field(f);
    }
    let mut tiff = Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let tiff = tiff.into_inner();
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&u16::try_from(tiff.len() + 8).unwrap().to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A `w` x `h` RGBA PNG: transparent on the left half, opaque red on the right.
fn alpha_png(w: u32, h: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity((w * h * 4) as usize);
    for _ in 0..h {
        for x in 0..w {
            px.extend_from_slice(&if x < w / 2 {
                [0, 0, 0, 0]
            } else {
                [RED[0], RED[1], RED[2], 255]
            });
        }
    }
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&px, w, h, image::ExtendedColorType::Rgba8)
        .unwrap();
    out
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    let mut crc = 0xFFFF_FFFFu32;
    for b in crc_input {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

/// A valid PNG header declaring 50,000 x 50,000 RGBA pixels over a tiny IDAT.
fn png_bomb() -> Vec<u8> {
    let mut ihdr = 50_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut src = b"\x89PNG\r\n\x1a\n".to_vec();
    src.extend(png_chunk(b"IHDR", &ihdr));
    src.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    src.extend(png_chunk(b"IEND", &[]));
    src
}

async fn product(app: &TestApp, title: &str) -> String {
    let (status, p) = app
        .post(
            "/api/v1/products",
            json!({"title": title, "ean": "4006381333931"}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_str().unwrap().to_owned()
}

async fn upload(app: &TestApp, c: &reqwest::Client, pid: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    let r = c
        .post(app.url(&format!("/api/v1/products/{pid}/images")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits (20 s deadline) until the image's status is `done` or `failed`; answers the image.
async fn settled(app: &TestApp, id: &str) -> Value {
    let mut last = Value::Null;
    assert!(
        app.wait_for(&format!("/api/v1/media/{id}"), |_, m| {
            last = m.clone();
            m["status"] == "done" || m["status"] == "failed"
        })
        .await,
        "the image's job did not finish: {last}"
    );
    last
}

async fn fetch_link(app: &TestApp, link: &str) -> Vec<u8> {
    let url = if link.starts_with('/') {
        app.url(link)
    } else {
        link.to_owned()
    };
    let r = app.anon.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{link}");
    r.bytes().await.unwrap().to_vec()
}

fn rgb(jpeg: &[u8]) -> turbojpeg::Image<Vec<u8>> {
    turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).unwrap()
}

fn pixel(img: &turbojpeg::Image<Vec<u8>>, x: usize, y: usize) -> [u8; 3] {
    let i = y * img.pitch + x * 3;
    [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= 40)
}

async fn store_of(app: &TestApp) -> Arc<dyn ObjectStore> {
    pm_storage::object_store::from_settings(&app.settings)
        .await
        .unwrap()
}

async fn keys(app: &TestApp, store: &Arc<dyn ObjectStore>, pid: &str) -> Vec<String> {
    let bucket = &app.settings.object_store.buckets.product_images;
    let prefix = format!("products/{}/{pid}/", &pid[..2]);
    store
        .list(bucket, &prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key.trim_start_matches(&prefix).to_owned())
        .collect()
}

/// The photo path: upload, thumbnails with the EXIF rotation applied, metadata without GPS,
/// links, and the same bytes stored once.
async fn photo_is_rotated_thumbnailed_and_stored_once(app: &TestApp, label: &str) {
    let store = store_of(app).await;
    let pid = product(app, "Camera").await;
    // 600 x 400 stored, orientation 6: displayed 400 x 600, the left (red) half on top. The
    // name lies: the content decides.
    let jpeg = oriented_jpeg(600, 400, 6);
    let (status, img) = upload(app, &app.client, &pid, "photo.png", jpeg.clone()).await;
    assert_eq!(status, 201, "{label}: {img}");
    assert_eq!(
        (img["ext"].as_str(), img["content_type"].as_str()),
        (Some("jpg"), Some("image/jpeg"))
    );
    assert_eq!(
        (img["position"].as_i64(), img["is_main"].as_bool()),
        (Some(0), Some(true))
    );
    let id = img["id"].as_str().unwrap().to_owned();
    let done = settled(app, &id).await;
    assert_eq!(done["status"], "done", "{label}: {done}");
    assert_eq!(
        (
            done["metadata"]["width"].as_i64(),
            done["metadata"]["height"].as_i64()
        ),
        (Some(400), Some(600))
    );
    assert_eq!(done["metadata"]["format"], "jpeg");
    let exif = done["metadata"]["exif"].to_string();
    assert!(exif.contains("Acme"), "{exif}");
    assert!(!exif.to_ascii_lowercase().contains("gps"), "{exif}");
    let sizes: Vec<(String, i64, i64)> = done["thumbnails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["size"].as_str().unwrap().to_owned(),
                t["width"].as_i64().unwrap(),
                t["height"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        vec![
            ("small".into(), 100, 150),
            ("medium".into(), 200, 300),
            ("large".into(), 400, 600)
        ],
        "{label}: never upscaled"
    );
    for (size, w, h) in &sizes {
        let bytes = fetch_link(app, done["links"][size].as_str().unwrap()).await;
        let info = pm_media::probe(&bytes, &pm_media::Limits::default()).unwrap();
        assert_eq!(
            (i64::from(info.width), i64::from(info.height), info.orientation),
            (*w, *h, 1)
        );
        let px = rgb(&bytes);
        let (cx, top, bottom) = (px.width / 2, px.height / 8, px.height * 7 / 8);
        assert!(near(pixel(&px, cx, top), RED), "{label} {size}: red on top");
        assert!(near(pixel(&px, cx, bottom), BLUE), "{label} {size}: blue below");
    }
    assert_eq!(
        fetch_link(app, done["links"]["original"].as_str().unwrap()).await,
        jpeg
    );
    let sha = img["sha256"].as_str().unwrap();
    let mut expected = vec![
        format!("{sha}.jpg"),
        format!("{sha}_large.jpg"),
        format!("{sha}_medium.jpg"),
        format!("{sha}_small.jpg"),
    ];
    expected.sort();
    assert_eq!(keys(app, &store, &pid).await, expected, "{label}");

    // The same bytes again: the same image, one object.
    let (status, again) = upload(app, &app.client, &pid, "again.jpg", jpeg).await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(id.as_str())),
        "{label}"
    );
    let (_, list) = app.get(&format!("/api/v1/products/{pid}/images")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(keys(app, &store, &pid).await, expected);
}

#[tokio::test]
async fn a_photo_gets_rotated_thumbnails_metadata_and_links_and_is_stored_once() {
    for backend in backends() {
        let app = spawn_app_with(backend, |_| {}).await;
        let r = app
            .client
            .get(app.url("/api/v1/products/00000000-0000-0000-0000-000000000000/images"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        photo_is_rotated_thumbnailed_and_stored_once(&app, &format!("{backend:?}")).await;
        app.stop().await;
    }
}

/// The same against S3 when `PM_TEST_S3_ENDPOINT` is set.
#[tokio::test]
async fn a_photo_is_processed_on_s3() {
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
        o.buckets.product_images = format!("images-{run}");
    })
    .await;
    photo_is_rotated_thumbnailed_and_stored_once(&app, "s3").await;
    app.stop().await;
}

#[tokio::test]
async fn bad_files_are_refused_or_fail_with_their_reason() {
    for backend in backends() {
        let app = spawn_app_with(backend, |s| {
            s.media.max_upload_bytes = 200_000;
            s.media.max_images_per_product = 3;
        })
        .await;
        let pid = product(&app, "Lamp").await;
        // Not an image, whatever its name.
        let (status, body) = upload(&app, &app.client, &pid, "a.jpg", b"name;price\nlamp;3\n".to_vec()).await;
        assert_eq!(status, 415, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("only jpeg, png, webp, gif and tiff"),
            "{body}"
        );
        // A decompression bomb: refused from its header, at once.
        let started = std::time::Instant::now();
        let (status, body) = upload(&app, &app.client, &pid, "bomb.png", png_bomb()).await;
        assert_eq!(status, 422, "{body}");
        assert!(body.to_string().contains("50000x50000"), "{body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Over the size limit: 413 naming it.
        // (Just over it: a server that answers before the body is sent breaks the client's pipe.)
        let mut big = pm_media::synth::photo_jpeg(400, 300, 90, 1);
        big.resize(200_500, 0);
        let (status, body) = upload(&app, &app.client, &pid, "big.jpg", big).await;
        assert_eq!(status, 413, "{body}");
        assert!(body.to_string().contains("200000"), "{body}");
        // A truncated JPEG passes the header check and fails in its job, with the reason.
        let photo = pm_media::synth::photo_jpeg(400, 300, 90, 3);
        let (status, broken) = upload(
            &app,
            &app.client,
            &pid,
            "cut.jpg",
            photo[..photo.len() / 2].to_vec(),
        )
        .await;
        assert_eq!(status, 201, "{broken}");
        let failed = settled(&app, broken["id"].as_str().unwrap()).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(
            failed["error"],
            "corrupt or unreadable image: jpeg: premature end of jpeg file"
        );
        let (_, jobs) = app
            .get("/api/v1/jobs/media?kind=media.thumbnails&status=failed")
            .await;
        let job = &jobs["items"][0];
        assert_eq!(job["attempts"], 1, "fatal, not retried: {jobs}");
        assert!(
            job["last_error"].as_str().unwrap().contains("premature end"),
            "{jobs}"
        );
        // A PNG with alpha: flattened on white in the JPEG thumbnails.
        let (status, png) = upload(&app, &app.client, &pid, "alpha.png", alpha_png(300, 200)).await;
        assert_eq!(status, 201, "{png}");
        let done = settled(&app, png["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "done", "{done}");
        assert_eq!(done["metadata"]["format"], "png");
        let small = rgb(&fetch_link(&app, done["links"]["small"].as_str().unwrap()).await);
        assert_eq!((small.width, small.height), (150, 100));
        assert!(
            near(pixel(&small, 20, 50), [255, 255, 255]),
            "transparent became white"
        );
        assert!(near(pixel(&small, 130, 50), RED));
        // The product's limit (3 here).
        let (status, _) = upload(
            &app,
            &app.client,
            &pid,
            "c.jpg",
            pm_media::synth::photo_jpeg(64, 64, 80, 5),
        )
        .await;
        assert_eq!(status, 201);
        let (status, body) = upload(
            &app,
            &app.client,
            &pid,
            "d.jpg",
            pm_media::synth::photo_jpeg(64, 64, 80, 6),
        )
        .await;
        assert_eq!(status, 409, "{body}");
        assert!(body.to_string().contains("the most it may have is 3"), "{body}");
        // URLs naming private addresses are refused before anything is fetched.
        let (status, body) = app
            .post(
                &format!("/api/v1/products/{pid}/images"),
                json!({"url": "http://127.0.0.1:9/a.jpg"}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        app.stop().await;
    }
}

#[tokio::test]
async fn images_are_ordered_deleted_with_their_objects_reprocessed_and_qr_coded() {
    for backend in backends() {
        let app = spawn_app_with(backend, |_| {}).await;
        let store = store_of(&app).await;
        let pid = product(&app, "Kettle").await;
        let viewer = app.user_client("vera", &["viewer"]).await;
        let (status, _) = upload(
            &app,
            &viewer,
            &pid,
            "a.jpg",
            pm_media::synth::photo_jpeg(64, 48, 80, 1),
        )
        .await;
        assert_eq!(status, 403, "uploading needs catalog:write");
        let (_, a) = upload(
            &app,
            &app.client,
            &pid,
            "a.jpg",
            pm_media::synth::photo_jpeg(64, 48, 80, 1),
        )
        .await;
        let (_, b) = upload(
            &app,
            &app.client,
            &pid,
            "b.jpg",
            pm_media::synth::photo_jpeg(48, 64, 80, 2),
        )
        .await;
        let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
        assert_eq!(
            (b["position"].as_i64(), b["is_main"].as_bool()),
            (Some(1), Some(false))
        );
        settled(&app, a_id).await;
        settled(&app, b_id).await;
        let r = viewer
            .get(app.url(&format!("/api/v1/products/{pid}/images")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "reading needs catalog:read");
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age="));

        let (status, moved) = app
            .patch(
                &format!("/api/v1/products/{pid}/images/{b_id}"),
                json!({"position": 0, "is_main": true}),
            )
            .await;
        assert_eq!(status, 200, "{moved}");
        let (_, list) = app.get(&format!("/api/v1/products/{pid}/images")).await;
        let order: Vec<(&str, bool)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap(), i["is_main"].as_bool().unwrap()))
            .collect();
        assert_eq!(order, vec![(b_id, true), (a_id, false)]);

        // Reprocessing queues the product's images again; they end done.
        let (status, r) = app
            .post("/api/v1/media/reprocess", json!({"product_id": pid}))
            .await;
        assert_eq!((status, r["enqueued"].as_i64()), (202, Some(2)), "{r}");
        assert_eq!(settled(&app, a_id).await["status"], "done");
        assert_eq!(settled(&app, b_id).await["status"], "done");

        // Deleting removes its original and thumbnails; the other image becomes main.
        let b_sha = b["sha256"].as_str().unwrap();
        assert_eq!(
            keys(&app, &store, &pid)
                .await
                .iter()
                .filter(|k| k.starts_with(b_sha))
                .count(),
            4
        );
        let r = app
            .client
            .delete(app.url(&format!("/api/v1/products/{pid}/images/{b_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(
            keys(&app, &store, &pid)
                .await
                .iter()
                .filter(|k| k.starts_with(b_sha))
                .count(),
            0
        );
        assert_eq!(
            keys(&app, &store, &pid).await.len(),
            4,
            "the other image's objects stay"
        );
        let (_, list) = app.get(&format!("/api/v1/products/{pid}/images")).await;
        assert_eq!(list[0]["id"], a_id);
        assert_eq!(list[0]["is_main"], true);
        let (status, _) = app.get(&format!("/api/v1/media/{b_id}")).await;
        assert_eq!(status, 404);
        let (status, r) = app.post("/api/v1/media/reprocess", json!({"all": true})).await;
        assert_eq!(status, 202, "{r}");
        let job = format!("/api/v1/jobs/media/{}", r["job"].as_str().unwrap());
        let mut last = Value::Null;
        assert!(
            app.wait_for(&job, |_, j| {
                last = j.clone();
                j["status"] == "succeeded"
            })
            .await,
            "{last}"
        );
        assert_eq!(last["result"]["enqueued"], 1, "{last}");
        assert_eq!(settled(&app, a_id).await["status"], "done");
        let (status, _) = app.post("/api/v1/media/reprocess", json!({})).await;
        assert_eq!(status, 422);
        let r = viewer
            .post(app.url("/api/v1/media/reprocess"))
            .json(&json!({"all": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "reprocessing needs catalog:write");

        // QR codes, PNG and SVG, of the configured text.
        let r = viewer
            .get(app.url(&format!("/api/v1/products/{pid}/qrcode.png")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        let png = r.bytes().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let r = app
            .client
            .get(app.url(&format!("/api/v1/products/{pid}/qrcode.svg")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        assert!(r.text().await.unwrap().contains("<svg"));
        // Served from the store the second time: the same bytes.
        let again = app
            .client
            .get(app.url(&format!("/api/v1/products/{pid}/qrcode.png")))
            .send()
            .await
            .unwrap();
        assert_eq!(again.bytes().await.unwrap(), png);
        app.stop().await;
    }
}

/// An image given by URL (here the app's own signed link to another product's original, so
/// private addresses are allowed for the test), with WebP thumbnails.
#[tokio::test]
async fn an_image_from_a_url_gets_webp_thumbnails() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.media.fetch_private_addresses = true;
        s.media.thumbnail_format = pm_config::ThumbnailFormat::Webp;
    })
    .await;
    let pid = product(&app, "Chair").await;
    let (status, first) = upload(
        &app,
        &app.client,
        &pid,
        "a.jpg",
        pm_media::synth::photo_jpeg(320, 240, 85, 9),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let done = settled(&app, first["id"].as_str().unwrap()).await;
    let link = app.url(done["links"]["original"].as_str().unwrap());
    let (_, other) = app
        .post(
            "/api/v1/products",
            json!({"title": "Chair, blue", "ean": "4006381333924"}),
        )
        .await;
    let other = other["id"].as_str().unwrap();
    let (status, img) = app
        .post(&format!("/api/v1/products/{other}/images"), json!({"url": link}))
        .await;
    assert_eq!(status, 201, "{img}");
    assert_eq!(img["source_url"], link.as_str());
    assert_eq!(img["sha256"], first["sha256"]);
    let done = settled(&app, img["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    for t in done["thumbnails"].as_array().unwrap() {
        assert_eq!(t["content_type"], "image/webp");
        assert!(t["key"].as_str().unwrap().ends_with(".webp"), "{t}");
    }
    let small = fetch_link(&app, done["links"]["small"].as_str().unwrap()).await;
    let info = pm_media::probe(&small, &pm_media::Limits::default()).unwrap();
    assert_eq!((info.format.as_str(), info.width), ("webp", 150));
    assert!((112..=113).contains(&info.height), "{}", info.height);
    // A link that answers 404 is refused with the reason.
    let (status, body) = app
        .post(
            &format!("/api/v1/products/{other}/images"),
            json!({"url": app.url("/objects/product-images/none.jpg")}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    app.stop().await;
}

/// The main image of every product on a list page, by product id.
async fn mains_on_the_list(app: &TestApp) -> std::collections::HashMap<String, Value> {
    let (status, page) = app.get("/api/v1/products?limit=100").await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p["main_image"].clone()))
        .collect()
}

/// Product answers (one product, and the list) carry the main image with the links of
/// `GET /media/{id}`: null without an image, its links once processed (they download), null
/// again once it is deleted, though the product itself is served from the cache throughout.
#[tokio::test]
async fn product_answers_carry_their_main_image() {
    for backend in backends() {
        let app = spawn_app_with(backend, |_| {}).await;
        let pid = product(&app, "Toaster").await;
        let (status, bare) = app.post("/api/v1/products", json!({"title": "Bare"})).await;
        assert_eq!(status, 201, "{bare}");
        let bare = bare["id"].as_str().unwrap().to_owned();
        let (status, p) = app.get(&format!("/api/v1/products/{pid}")).await;
        assert_eq!((status, &p["main_image"]), (200, &Value::Null), "{p}");

        let (status, img) = upload(&app, &app.client, &pid, "t.jpg", oriented_jpeg(600, 400, 1)).await;
        assert_eq!(status, 201, "{img}");
        let id = img["id"].as_str().unwrap().to_owned();
        assert_eq!(settled(&app, &id).await["status"], "done");

        let (status, p) = app.get(&format!("/api/v1/products/{pid}")).await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["title"], "Toaster", "{p}");
        let m = &p["main_image"];
        assert_eq!(
            (
                m["id"].as_str(),
                m["status"].as_str(),
                m["width"].as_i64(),
                m["height"].as_i64()
            ),
            (Some(id.as_str()), Some("done"), Some(600), Some(400)),
            "{backend:?}: {p}"
        );
        for size in ["original", "small", "medium", "large"] {
            let link = m["links"][size].as_str().unwrap_or_else(|| panic!("{size}: {p}"));
            assert!(!fetch_link(&app, link).await.is_empty());
        }

        let mains = mains_on_the_list(&app).await;
        assert_eq!(mains[&bare], Value::Null);
        let m = &mains[&pid];
        assert_eq!(m["id"].as_str(), Some(id.as_str()), "{m}");
        for size in ["original", "small", "medium", "large"] {
            fetch_link(&app, m["links"][size].as_str().unwrap()).await;
        }

        let r = app
            .client
            .delete(app.url(&format!("/api/v1/products/{pid}/images/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (status, p) = app.get(&format!("/api/v1/products/{pid}")).await;
        assert_eq!((status, &p["main_image"]), (200, &Value::Null), "{p}");
        assert_eq!(mains_on_the_list(&app).await[&pid], Value::Null);
        app.stop().await;
    }
}

/// Nothing is lost across a restart: an image uploaded to an app that processes no thumbnails
/// (`jobs.workers.media = 0`) stays `queued` there; a second app on the same databases and
/// data directory makes its thumbnails from the original the first one stored.
#[tokio::test]
async fn an_image_queued_before_a_restart_gets_its_thumbnails_after_it() {
    for backend in backends() {
        let first = spawn_app_with(backend, |s| s.jobs.workers.media = Some(0)).await;
        let pid = product(&first, "Lamp").await;
        let (status, img) = upload(&first, &first.client, &pid, "l.jpg", oriented_jpeg(600, 400, 1)).await;
        assert_eq!(status, 201, "{img}");
        let id = img["id"].as_str().unwrap().to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (_, m) = first.get(&format!("/api/v1/media/{id}")).await;
        assert_eq!(
            (m["status"].as_str(), m["thumbnails"].as_array().map(Vec::len)),
            (Some("queued"), Some(0)),
            "{backend:?}: nothing processes it on the first app: {m}"
        );
        // The thumbnail pool's figures: the queue's depth on its gate.
        let (status, gate) = first.get("/admin/actors/jobs.media.queue").await;
        assert_eq!(status, 200, "{gate}");
        assert_eq!(
            (
                gate["queue_depth"]["ready"].as_u64(),
                gate["queue_depth"]["running"].as_u64()
            ),
            (Some(1), Some(0)),
            "{gate}"
        );
        let (data_dir, prefix) = (
            first.settings.storage.data_dir.clone(),
            first.settings.database.name_prefix.clone(),
        );
        first.stop_keeping_data().await;

        let second = spawn_app_with(backend, move |s| {
            s.storage.data_dir = data_dir;
            s.database.name_prefix = prefix;
        })
        .await;
        let done = settled(&second, &id).await;
        assert_eq!(done["status"], "done", "{backend:?}: {done}");
        let sizes: Vec<&str> = done["thumbnails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["size"].as_str().unwrap())
            .collect();
        assert_eq!(sizes, ["small", "medium", "large"], "{done}");
        for size in ["original", "small", "medium", "large"] {
            fetch_link(&second, done["links"][size].as_str().unwrap()).await;
        }
        let (_, p) = second.get(&format!("/api/v1/products/{pid}")).await;
        assert_eq!(p["main_image"]["status"], "done", "{p}");
        // ... and its workers' outcomes (`jobs.media.worker.1`, `.2`; the job is recorded just
        // after the image is done).
        let mut succeeded = 0;
        for _ in 0..100 {
            succeeded = 0;
            for i in 1..=second.settings.jobs.workers.media_count() {
                let (_, w) = second.get(&format!("/admin/actors/jobs.media.worker.{i}")).await;
                succeeded += w["state"]["outcomes"]["succeeded"].as_u64().unwrap_or(0);
            }
            if succeeded > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(succeeded, 1, "{backend:?}");
        let (_, gate) = second.get("/admin/actors/jobs.media.queue").await;
        assert_eq!(gate["queue_depth"]["ready"].as_u64(), Some(0), "{gate}");
        second.stop().await;
    }
}

/// A TCP relay to `target` that can be switched off (open connections cut, new ones closed at
/// once), standing for an S3 server that becomes unreachable and comes back.
async fn relay(target: std::net::SocketAddr) -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (up, watch) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !*watch.borrow() {
                drop(inbound);
                continue;
            }
            let mut down = watch.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), up)
}

/// S3 unreachable while an image's thumbnails are remade: the job fails, is retried with the
/// job layer's backoff, and makes the thumbnails once S3 is back (runs when
/// `PM_TEST_S3_ENDPOINT` is set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_are_retried_until_s3_answers_again() {
    let Some(endpoint) = pm_config::testenv::test_server("PM_TEST_S3_ENDPOINT") else {
        return;
    };
    let target = url::Url::parse(&endpoint).unwrap();
    let target = target.socket_addrs(|| None).unwrap()[0];
    let (proxied, up) = relay(target).await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        let o = &mut s.object_store;
        o.backend = pm_config::ObjectStoreBackend::S3;
        o.s3.endpoint = Some(proxied.clone());
        o.s3.access_key_id = Some(std::env::var("PM_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "test".into()));
        o.s3.secret_access_key = Some(pm_config::Secret::new(
            std::env::var("PM_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "test".into()),
        ));
        o.buckets.product_images = format!("images-{run}");
        s.jobs.retry_base_secs = 1;
        s.jobs.retry_factor = 1;
    })
    .await;
    let pid = product(&app, "Lamp").await;
    let (status, img) = upload(&app, &app.client, &pid, "l.jpg", oriented_jpeg(600, 400, 1)).await;
    assert_eq!(status, 201, "{img}");
    let id = img["id"].as_str().unwrap().to_owned();
    assert_eq!(settled(&app, &id).await["status"], "done");

    // S3 goes away; the thumbnails are asked again: the job cannot read the original.
    up.send_replace(false);
    let (status, r) = app
        .post("/api/v1/media/reprocess", json!({"product_id": pid}))
        .await;
    assert!(status == 200 || status == 202, "{status} {r}");
    let mut job = Value::Null;
    assert!(
        app.wait_for("/api/v1/jobs/media", |_, page| {
            job = page["items"][0].clone();
            job["attempts"].as_i64().is_some_and(|a| a >= 1) && job["last_error"].is_string()
        })
        .await,
        "the job never failed on the unreachable store: {job}"
    );
    assert_eq!(job["status"], "queued", "retried, not failed: {job}");
    // S3 is back: the retry makes the thumbnails.
    up.send_replace(true);
    let job_id = job["id"].as_str().unwrap().to_owned();
    let mut last = Value::Null;
    assert!(
        app.wait_for(&format!("/api/v1/jobs/media/{job_id}"), |_, j| {
            last = j.clone();
            j["status"] == "succeeded"
        })
        .await,
        "the retry did not succeed: {last}"
    );
    assert!(last["attempts"].as_i64().unwrap() >= 2, "{last}");
    let (_, m) = app.get(&format!("/api/v1/media/{id}")).await;
    assert_eq!(
        (m["status"].as_str(), m["thumbnails"].as_array().map(Vec::len)),
        (Some("done"), Some(3)),
        "{m}"
    );
    app.stop().await;
}

/// A supplier's image server on loopback: two images, a 404, a page that is not an image, an
/// image that times out, each request counted by path.
async fn image_server() -> (
    String,
    Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
) {
    use axum::http::{header, StatusCode, Uri};
    use axum::response::IntoResponse;
    let hits: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    let counted = hits.clone();
    let jpeg = pm_media::synth::photo_jpeg(640, 480, 85, 3);
    let png = alpha_png(200, 100);
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let (jpeg, png) = (jpeg.clone(), png.clone());
        *counted.lock().unwrap().entry(uri.path().to_owned()).or_default() += 1;
        async move {
            match uri.path() {
                "/img/front.jpg" => ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response(),
                // A name that lies: the bytes are a PNG.
                "/img/back.jpg" => ([(header::CONTENT_TYPE, "image/jpeg")], png).into_response(),
                "/img/page.jpg" => "<html>not an image</html>".into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), hits)
}

/// A supplier file's image URL column feeds media: each product's URLs are fetched in order
/// (the first becomes the main image), stored and thumbnailed; a 404 and a page that is not an
/// image are in the import's log with their line; a second run of the file fetches nothing it
/// already has.
#[tokio::test]
async fn image_urls_of_an_import_become_the_products_images() {
    let (server, hits) = image_server().await;
    for backend in backends() {
        hits.lock().unwrap().clear();
        let app = spawn_app_with(backend, |s| s.media.fetch_private_addresses = true).await;
        let (_, supplier) = app
            .post("/api/v1/suppliers", json!({"code": "acme", "name": "Acme"}))
            .await;
        let sid = supplier["id"].as_str().unwrap().to_owned();
        let file = format!(
            "ean;title;price;stock;images\n\
             4006381333931;Stylo;1,50;12;{server}/img/front.jpg|{server}/img/back.jpg\n\
             5901234123457;Agrafeuse;3,00;2;{server}/img/gone.jpg\n\
             4006381333924;Gomme;0,80;40;{server}/img/page.jpg\n\
             9780201379624;Livre;12,00;1;\n"
        );
        let job =
            crate::imports::upload_and_wait(&app, &sid, "acme.csv", file.clone().into_bytes(), "").await;
        assert_eq!(job["status"], "succeeded", "{backend:?}: {job}");
        let c = &job["result"]["counters"];
        assert_eq!(
            (c["created"].as_u64(), c["images_queued"].as_u64()),
            (Some(4), Some(4)),
            "{c}"
        );

        // The pen gets both images, in the file's order, the first one main, both thumbnailed.
        let pen = crate::imports::by_ean(&app, "4006381333931").await;
        let pen = pen["id"].as_str().unwrap().to_owned();
        let mut images = Value::Null;
        assert!(
            app.wait_for(&format!("/api/v1/products/{pen}/images"), |_, l| {
                images = l.clone();
                l.as_array()
                    .is_some_and(|a| a.len() == 2 && a.iter().all(|i| i["status"] == "done"))
            })
            .await,
            "{backend:?}: {images}"
        );
        let list = images.as_array().unwrap();
        assert_eq!(list[0]["source_url"], format!("{server}/img/front.jpg"));
        assert_eq!(list[0]["is_main"], true, "{images}");
        assert_eq!(list[1]["source_url"], format!("{server}/img/back.jpg"));
        assert_eq!(
            list[1]["content_type"], "image/png",
            "sniffed, not named: {images}"
        );
        let front = settled(&app, list[0]["id"].as_str().unwrap()).await;
        assert_eq!(front["metadata"]["width"], 640, "{front}");
        assert_eq!(front["thumbnails"].as_array().unwrap().len(), 3, "{front}");

        // The two URLs that are no image are in the import's log, with their lines.
        let logs_path = format!("/api/v1/imports/jobs/{}/logs", job["id"].as_str().unwrap());
        let mut logs = Value::Null;
        assert!(
            app.wait_for(&logs_path, |_, l| {
                logs = l.clone();
                l["lines"].as_array().is_some_and(|a| {
                    a.iter()
                        .filter(|x| {
                            x["level"] == "warn" && x["message"].as_str().unwrap_or("").contains("image")
                        })
                        .count()
                        == 2
                })
            })
            .await,
            "{backend:?}: {logs}"
        );
        let text = logs.to_string();
        assert!(text.contains("line 3: image") && text.contains("404"), "{text}");
        assert!(text.contains("line 4: image"), "{text}");
        let stapler = crate::imports::by_ean(&app, "5901234123457").await;
        let (_, none) = app
            .get(&format!(
                "/api/v1/products/{}/images",
                stapler["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(none, json!([]), "{backend:?}");

        // Again: the images the products have are not fetched again (the failed ones are).
        let again = crate::imports::upload_and_wait(&app, &sid, "acme.csv", file.into_bytes(), "").await;
        assert_eq!(again["result"]["counters"]["images_queued"], 2, "{again}");
        let gone = "/img/gone.jpg";
        assert!(
            app.wait_for(
                &logs_path.replace(job["id"].as_str().unwrap(), again["id"].as_str().unwrap()),
                |_, l| {
                    l["lines"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|x| x["message"].as_str().unwrap_or("").contains(gone))
                    })
                }
            )
            .await,
            "{backend:?}: the second run's fetch did not end"
        );
        let h = hits.lock().unwrap().clone();
        assert_eq!(
            (h.get("/img/front.jpg"), h.get("/img/back.jpg")),
            (Some(&1), Some(&1)),
            "{h:?}"
        );
        app.stop().await;
    }
}
