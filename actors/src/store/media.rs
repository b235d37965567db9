//! The media database's queries, as messages of its store ([`DbStore`]).

use pm_storage::media::{
    Added, MainImage, Media, MediaFile, MediaMetadata, MediaThumbnail, NewMediaFile, ProductQrCode,
};
use pm_storage::StoreError;
use pm_supervisors::{Ctx, Handles, Reply};
use uuid::Uuid;

use super::db::DbStore;

/// Implements `Handles<$msg>` for [`DbStore`] with one `Media` query on the worker pool.
macro_rules! media_query {
    ($msg:ty => $ok:ty, |$c:ident, $m:ident| $body:expr) => {
        impl Handles<$msg> for DbStore {
            type Ok = $ok;
            type Err = StoreError;
            fn is_failure(e: &StoreError) -> bool {
                !e.is_callers()
            }
            fn handle(&mut self, $m: $msg, _ctx: &Ctx<Self>) -> Reply<Result<$ok, StoreError>> {
                let $c = Media::new(self.db().clone());
                Reply::spawn(async move { $body.await })
            }
        }
    };
}

/// Records an original (or finds the product's image with the same bytes).
#[derive(Debug)]
pub struct AddImage {
    pub file: NewMediaFile,
    pub max_per_product: u32,
}
media_query!(AddImage => Added, |c, m| async move { c.add(&m.file, m.max_per_product).await });

/// A product's images in order.
#[derive(Debug)]
pub struct ListImages(pub Uuid);
media_query!(ListImages => Vec<MediaFile>, |c, m| async move { c.list(m.0).await });

/// An image with its thumbnails and metadata.
#[derive(Debug)]
pub struct GetImage(pub Uuid);
media_query!(GetImage => Option<(MediaFile, Vec<MediaThumbnail>, Option<MediaMetadata>)>, |c, m| async move {
    let Some(file) = c.get(m.0).await? else {
        return Ok(None);
    };
    let thumbs = c.thumbnails(m.0).await?;
    let meta = c.metadata(m.0).await?;
    Ok(Some((file, thumbs, meta)))
});

/// Moves an image and/or makes it the main one.
#[derive(Debug)]
pub struct UpdateImage {
    pub product_id: Uuid,
    pub id: Uuid,
    pub position: Option<i64>,
    pub is_main: Option<bool>,
}
media_query!(UpdateImage => Option<MediaFile>, |c, m| async move {
    c.update(m.product_id, m.id, m.position, m.is_main).await
});

/// Deletes an image: the image, its thumbnails' keys, and whether its bytes are still used.
#[derive(Debug)]
pub struct DeleteImage {
    pub product_id: Uuid,
    pub id: Uuid,
}
media_query!(DeleteImage => Option<(MediaFile, Vec<String>, bool)>, |c, m| async move {
    c.delete(m.product_id, m.id).await
});

/// The images of a product (or all) as `(image, product)`.
#[derive(Debug)]
pub struct ImageIds(pub Option<Uuid>);
media_query!(ImageIds => Vec<(Uuid, Uuid)>, |c, m| async move { c.ids(m.0).await });

/// Sets an image back to `queued` (before its job is enqueued again).
#[derive(Debug)]
pub struct RequeueImage(pub Uuid);
media_query!(RequeueImage => bool, |c, m| async move {
    c.set_status(m.0, pm_storage::media::MediaStatus::Queued, None).await
});

/// A product's stored QR code.
#[derive(Debug)]
pub struct QrCodeOf(pub Uuid);
media_query!(QrCodeOf => Option<ProductQrCode>, |c, m| async move { c.qrcode(m.0).await });

/// Records a product's QR code.
#[derive(Debug)]
pub struct PutQrCode(pub ProductQrCode);
media_query!(PutQrCode => (), |c, m| async move { c.put_qrcode(&m.0).await });

/// The main images of a page of products, in one query.
#[derive(Debug)]
pub struct MainImages(pub Vec<Uuid>);
media_query!(MainImages => Vec<MainImage>, |c, m| async move { c.main_images(&m.0).await });
