//! The media database's queries, as messages of its store ([`super::db::DbStore`]).

use pm_storage::media::{
    Added, MainImage, Media, MediaFile, MediaMetadata, MediaThumbnail, NewMediaFile, ProductQrCode,
};
use uuid::Uuid;

/// Records an original (or finds the product's image with the same bytes).
#[derive(Debug)]
pub struct AddImage {
    pub file: NewMediaFile,
    pub max_per_product: u32,
}
super::db_query!(Media, AddImage => Added, |c, m| async move { c.add(&m.file, m.max_per_product).await });

/// A product's images in order.
#[derive(Debug)]
pub struct ListImages(pub Uuid);
super::db_query!(Media, ListImages => Vec<MediaFile>, |c, m| async move { c.list(m.0).await });

/// An image with its thumbnails and metadata.
#[derive(Debug)]
pub struct GetImage(pub Uuid);
super::db_query!(Media, GetImage => Option<(MediaFile, Vec<MediaThumbnail>, Option<MediaMetadata>)>, |c, m| async move {
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
super::db_query!(Media, UpdateImage => Option<MediaFile>, |c, m| async move {
    c.update(m.product_id, m.id, m.position, m.is_main).await
});

/// Deletes an image: the image, its thumbnails' keys, and whether its bytes are still used.
#[derive(Debug)]
pub struct DeleteImage {
    pub product_id: Uuid,
    pub id: Uuid,
}
super::db_query!(Media, DeleteImage => Option<(MediaFile, Vec<String>, bool)>, |c, m| async move {
    c.delete(m.product_id, m.id).await
});

/// A product's stored QR code.
#[derive(Debug)]
pub struct QrCodeOf(pub Uuid);
super::db_query!(Media, QrCodeOf => Option<ProductQrCode>, |c, m| async move { c.qrcode(m.0).await });

/// Records a product's QR code.
#[derive(Debug)]
pub struct PutQrCode(pub ProductQrCode);
super::db_query!(Media, PutQrCode => (), |c, m| async move { c.put_qrcode(&m.0).await });

/// The main images of a page of products, in one query.
#[derive(Debug)]
pub struct MainImages(pub Vec<Uuid>);
super::db_query!(Media, MainImages => Vec<MainImage>, |c, m| async move { c.main_images(&m.0).await });
