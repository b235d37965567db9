//! Shop exports as supplier files: WooCommerce's and Shopify's own product CSVs, recognised
//! from their header and read by their rules, with no mapping or template to make.
//!
//! Both describe variable products in several rows, which a column mapping cannot express:
//! - **WooCommerce** (Products → Export): one row per product, `Type` `simple`, `variable`
//!   (a parent) or `variation`, whose `Parent` is the parent's SKU, or `id:123` (the parent's
//!   `ID`) when the parent has none. Attributes are `Attribute N name` / `Attribute N
//!   value(s)` pairs; lists (`Categories`, `Images`, `Brands`) are comma-separated with `\,`
//!   for a literal comma; categories are paths (`Clothing > Tshirts, Clothing`: the first is
//!   used); descriptions hold `\n` for line breaks; a cell starting with `=`, `+`, `-` or `@`
//!   is prefixed with `'` (spreadsheet-formula escaping), which is removed.
//! - **Shopify** (Products → Export): the rows of one product share its `Handle` and follow
//!   each other; the first carries the product (`Title`, `Body (HTML)`, `Vendor`, `Product
//!   Category`/`Type`, `OptionN Name`) and its first variant; the next carry a variant each
//!   (`OptionN Value`, `Variant SKU`, `Variant Price`...), or only an `Image Src` (a further
//!   image of the product).
//!
//! The rows of a Shopify product are held until the handle changes (at most
//! [`MAX_GROUP_ROWS`] rows or [`MAX_GROUP_BYTES`]; a larger product is given out in parts, its
//! later image-only rows then ignored), so that its parent row carries every image. A product
//! whose only variant is Shopify's `Default Title` is one product (SKU: the variant's, else the
//! handle); otherwise the parent comes first (SKU: the handle; title, description, brand,
//! category, images, option values as attributes; no price), then each variant with
//! `parent_sku` = the handle, its options as attributes, and the title `Product - S / Black`.
//! Image-only rows give no output of their own: their images are the parent's.
//!
//! A WooCommerce variation's parent is found by its SKU as written, or through a map of the
//! variable products' `ID` → SKU seen above it (at most [`MAX_PARENTS`]); its title, when its
//! `Name` is empty, is the parent's `Name - value, value`. A variation whose parent cannot be
//! named (no `Parent`, or an `id:` not above it, or a parent without a SKU) is a reject
//! (`unknown_parent`) rather than a product cut off from its family.
//!
//! Shop exports write numbers with a decimal point whatever the shop's locale, so their prices
//! are read that way; a negative stock (a backorder, an oversold variant) is read as 0. Every
//! row then goes through the same validation as any file's ([`crate::rows`]).

use std::collections::{HashMap, VecDeque};

use pm_domain::text::slugify;

use crate::cells::{decimal, DecimalMark};
use crate::mapping::{key, Target};
use crate::rows::{ProductRow, RowCheck, RowError, Value, Values};

/// What a stream gives out.
type Out = VecDeque<Result<ProductRow, Box<RowError>>>;

/// The most WooCommerce parents remembered (by `ID`) to resolve `Parent` = `id:N`.
pub const MAX_PARENTS: usize = 1_000_000;
/// The most bytes of IDs, SKUs and titles of remembered parents.
const MAX_PARENT_BYTES: usize = 64 * 1024 * 1024;
/// The most rows of one Shopify product held back (Shopify allows 2,048 variants and 250
/// images).
pub const MAX_GROUP_ROWS: usize = 5000;
/// The most bytes of cells of one Shopify product held back.
pub const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// A shop's product export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    WooCommerce,
    Shopify,
}

impl Profile {
    /// `woocommerce` or `shopify`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::WooCommerce => "woocommerce",
            Profile::Shopify => "shopify",
        }
    }
}

/// WooCommerce columns every export has (normalised keys, [`crate::mapping::key`]).
const WOO_REQUIRED: &[&str] = &["id", "type", "sku", "name"];
/// WooCommerce's own column names, of which an export has several.
const WOO_SIGNATURE: &[&str] = &[
    "parent",
    "regular price",
    "sale price",
    "published",
    "is featured",
    "visibility in catalog",
    "in stock",
    "tax status",
    "tax class",
    "backorders allowed",
    "sold individually",
    "allow customer reviews",
    "grouped products",
    "cross sells",
    "attribute 1 name",
    "attribute 1 value s",
    "gtin upc ean or isbn",
];
/// Shopify columns every product export has.
const SHOPIFY_REQUIRED: &[&str] = &[
    "handle",
    "title",
    "body html",
    "option1 name",
    "option1 value",
    "variant sku",
    "variant price",
];

/// The shop whose export has this header, if any: every required column and (WooCommerce)
/// at least three of its own column names, so that a supplier's `ID;Type;SKU;Name;Price` is
/// not taken for one.
pub fn detect(headers: &[String]) -> Option<Profile> {
    let keys: Vec<String> = headers.iter().map(|h| key(h)).collect();
    let has = |k: &str| keys.iter().any(|h| h == k);
    if SHOPIFY_REQUIRED.iter().all(|k| has(k)) {
        return Some(Profile::Shopify);
    }
    if WOO_REQUIRED.iter().all(|k| has(k)) && WOO_SIGNATURE.iter().filter(|k| has(k)).count() >= 3 {
        return Some(Profile::WooCommerce);
    }
    None
}

/// A shop export's reader.
pub(crate) enum Shop {
    Woo(Box<Woo>),
    Shopify(Box<Shopify>),
}

impl Shop {
    pub(crate) fn new(profile: Profile, headers: &[String]) -> Self {
        let keys: Vec<String> = headers.iter().map(|h| key(h)).collect();
        match profile {
            Profile::WooCommerce => Shop::Woo(Box::new(Woo::new(&keys))),
            Profile::Shopify => Shop::Shopify(Box::new(Shopify::new(&keys))),
        }
    }

    pub(crate) fn push(&mut self, check: &RowCheck, line: u64, r: &[&str], out: &mut Out) {
        match self {
            Shop::Woo(w) => w.push(check, line, r, out),
            Shop::Shopify(s) => s.push(check, line, r, out),
        }
    }

    pub(crate) fn finish(&mut self, check: &RowCheck, out: &mut Out) {
        if let Shop::Shopify(s) = self {
            s.flush(check, out, true);
        }
    }
}

/// The column whose key is `k`.
fn col(keys: &[String], k: &str) -> Option<usize> {
    keys.iter().position(|h| h == k)
}

/// The cell in column `i`, trimmed (empty when the column or the cell is missing).
fn cell<'a>(r: &[&'a str], i: Option<usize>) -> &'a str {
    i.and_then(|i| r.get(i)).map_or("", |c| c.trim())
}

/// A number written with a decimal point: the same, or `0` for a negative stock.
fn stock(s: &str) -> String {
    match decimal(s, DecimalMark::Dot) {
        Ok(d) if d.starts_with('-') => "0".into(),
        _ => s.to_owned(),
    }
}

/// The longest list of values kept as one attribute (a parent's `Blue, Green, Red`), in
/// characters: the attribute limit of the validation.
const MAX_LIST_CHARS: usize = 1000;

/// Values joined with `, `, as many whole ones as fit in [`MAX_LIST_CHARS`] (a parent's list
/// of option values is a summary; each variant carries its own value).
fn joined_list<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for v in values {
        let n = v.chars().count() + if out.is_empty() { 0 } else { 2 };
        if chars + n > MAX_LIST_CHARS {
            break;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(v);
        chars += n;
    }
    out
}

/// A category path with ` > ` between its levels.
fn levels(path: &str) -> String {
    crate::rows::category_levels(path).collect::<Vec<_>>().join(" > ")
}

/// A value from a cell of column `i` (`None` when empty).
fn field(target: Target, i: Option<usize>, text: impl Into<String>) -> Option<Value<'static>> {
    let text: String = text.into();
    (!text.trim().is_empty()).then(|| Value::computed(target, i, text))
}

// WooCommerce.

/// WooCommerce's columns and the parents seen.
pub(crate) struct Woo {
    id: Option<usize>,
    kind: Option<usize>,
    sku: Option<usize>,
    gtin: Option<usize>,
    name: Option<usize>,
    short_description: Option<usize>,
    description: Option<usize>,
    stock: Option<usize>,
    sale_price: Option<usize>,
    regular_price: Option<usize>,
    categories: Option<usize>,
    images: Option<usize>,
    parent: Option<usize>,
    brands: Option<usize>,
    /// `(Attribute N name, Attribute N value(s))`, by N.
    attributes: Vec<(usize, usize)>,
    parents: Parents,
}

/// The variable products seen: `ID` → SKU (`None`: it has none) and SKU → name.
#[derive(Default)]
struct Parents {
    sku_of_id: HashMap<String, Option<String>>,
    title_of_sku: HashMap<String, String>,
    bytes: usize,
}

impl Parents {
    fn remember(&mut self, id: &str, sku: &str, title: &str) {
        let cost = id.len() + 2 * sku.len() + title.len() + 64;
        if self.sku_of_id.len() >= MAX_PARENTS || self.bytes.saturating_add(cost) > MAX_PARENT_BYTES {
            return;
        }
        self.bytes += cost;
        if !id.is_empty() {
            self.sku_of_id
                .insert(id.to_owned(), (!sku.is_empty()).then(|| sku.to_owned()));
        }
        if !sku.is_empty() {
            self.title_of_sku.insert(sku.to_owned(), title.to_owned());
        }
    }
}

/// A WooCommerce cell without the `'` its exporter puts before `=`, `+`, `-`, `@`.
fn wc_cell<'a>(r: &[&'a str], i: Option<usize>) -> &'a str {
    let c = cell(r, i);
    match c.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => c,
    }
}

/// A WooCommerce list: comma-separated, `\,` a literal comma; trimmed, empty items dropped.
fn wc_list(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            ',' => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect()
}

/// A WooCommerce description: `\n` is a line break, `\\n` a literal `\n`.
fn wc_description(s: &str) -> String {
    s.split("\\\\n")
        .map(|part| part.replace("\\n", "\n"))
        .collect::<Vec<_>>()
        .join("\\n")
}

impl Woo {
    fn new(keys: &[String]) -> Self {
        let c = |k: &str| col(keys, k);
        let mut attributes = Vec::new();
        for n in 1..=keys.len() {
            match (
                c(&format!("attribute {n} name")),
                c(&format!("attribute {n} value s")),
            ) {
                (Some(name), Some(value)) => attributes.push((name, value)),
                _ => break,
            }
        }
        Self {
            id: c("id"),
            kind: c("type"),
            sku: c("sku"),
            gtin: c("gtin upc ean or isbn").or_else(|| c("gtin")),
            name: c("name"),
            short_description: c("short description"),
            description: c("description"),
            stock: c("stock"),
            sale_price: c("sale price"),
            regular_price: c("regular price"),
            categories: c("categories"),
            images: c("images"),
            parent: c("parent"),
            brands: c("brands").or_else(|| c("brand")),
            attributes,
            parents: Parents::default(),
        }
    }

    fn push(&mut self, check: &RowCheck, line: u64, r: &[&str], out: &mut Out) {
        if let Some(e) = check.too_large(line, r) {
            out.push_back(Err(e));
            return;
        }
        let c = |i: Option<usize>| wc_cell(r, i);
        let kinds = c(self.kind).to_lowercase();
        let is = |k: &str| kinds.split(',').any(|t| t.trim() == k);
        let (variable, variation) = (is("variable"), is("variation"));
        let (id, sku, name) = (c(self.id), c(self.sku), c(self.name));
        let attributes: Vec<(String, String, Option<usize>)> = self
            .attributes
            .iter()
            .filter_map(|(n, v)| {
                let value = joined_list(wc_list(c(Some(*v))).iter().map(String::as_str));
                let name = c(Some(*n));
                (!name.is_empty() && !value.is_empty()).then(|| (name.to_owned(), value, Some(*v)))
            })
            .collect();
        if variable {
            self.parents.remember(id, sku, name);
        }
        let mut parent_sku = None;
        let mut title = name.to_owned();
        if variation {
            let p = c(self.parent);
            let found = match p.strip_prefix("id:") {
                Some(pid) => match self.parents.sku_of_id.get(pid.trim()) {
                    Some(Some(s)) => Ok(s.clone()),
                    Some(None) => Err(format!(
                        "the parent {p} has no sku, so the variation cannot name it: give it one in the shop and export again"
                    )),
                    None => Err(format!(
                        "the parent {p} is not a variable product above this row"
                    )),
                },
                None if p.is_empty() => Err("a variation without a parent".into()),
                None => Ok(p.to_owned()),
            };
            let s = match found {
                Ok(s) => s,
                Err(why) => {
                    out.push_back(Err(check.error(
                        line,
                        r,
                        self.parent,
                        Some(p),
                        "unknown_parent",
                        why,
                    )));
                    return;
                }
            };
            if title.is_empty() {
                if let Some(t) = self.parents.title_of_sku.get(&s) {
                    let values: Vec<&str> = attributes.iter().map(|(_, v, _)| v.as_str()).collect();
                    title = if values.is_empty() {
                        t.clone()
                    } else {
                        format!("{t} - {}", values.join(", "))
                    };
                }
            }
            parent_sku = Some(s);
        }
        let (description_column, description) = match (c(self.description), c(self.short_description)) {
            ("", "") => (None, String::new()),
            ("", short) => (self.short_description, wc_description(short)),
            (long, _) => (self.description, wc_description(long)),
        };
        let fields = [
            field(Target::Sku, self.sku, sku),
            field(Target::Ean, self.gtin, c(self.gtin)),
            Some(Value::computed(Target::Title, self.name, title)),
            field(Target::Description, description_column, description),
            wc_list(c(self.brands))
                .into_iter()
                .next()
                .and_then(|b| field(Target::Brand, self.brands, b)),
            wc_list(c(self.categories))
                .first()
                .and_then(|p| field(Target::CategoryPath, self.categories, levels(p))),
            field(Target::ImageUrl, self.images, c(self.images)),
            field(Target::RetailPrice, self.regular_price, c(self.regular_price)).map(Value::dot),
            field(Target::SalePrice, self.sale_price, c(self.sale_price)).map(Value::dot),
            field(Target::Stock, self.stock, stock(c(self.stock))).map(Value::dot),
            parent_sku.and_then(|p| field(Target::ParentSku, self.parent, p)),
        ];
        let values = Values {
            fields: fields.into_iter().flatten().collect(),
            attributes,
        };
        out.push_back(check.validate(line, r, &values));
    }
}

// Shopify.

/// Shopify's columns and the product being read.
pub(crate) struct Shopify {
    handle: Option<usize>,
    title: Option<usize>,
    body: Option<usize>,
    vendor: Option<usize>,
    /// `Product Category`, then `Type` (or the older exports' custom and standard types).
    category: Vec<usize>,
    /// `(OptionN Name, OptionN Value)`, N = 1 to 3.
    options: Vec<(Option<usize>, Option<usize>)>,
    sku: Option<usize>,
    price: Option<usize>,
    compare_at: Option<usize>,
    cost: Option<usize>,
    qty: Option<usize>,
    barcode: Option<usize>,
    image: Option<usize>,
    variant_image: Option<usize>,
    group: Option<Group>,
}

/// The rows of one handle.
struct Group {
    handle: String,
    /// From its first row.
    title: String,
    body: String,
    vendor: String,
    category: String,
    option_names: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
    bytes: usize,
    /// Given out (the parent, or the single product) by an earlier part.
    started: bool,
    /// Variants given out so far (for derived SKUs).
    variants: usize,
}

impl Shopify {
    fn new(keys: &[String]) -> Self {
        let c = |k: &str| col(keys, k);
        Self {
            handle: c("handle"),
            title: c("title"),
            body: c("body html"),
            vendor: c("vendor"),
            category: [
                "product category",
                "type",
                "custom product type",
                "standard product type",
            ]
            .iter()
            .filter_map(|k| c(k))
            .collect(),
            options: (1..=3)
                .map(|n| (c(&format!("option{n} name")), c(&format!("option{n} value"))))
                .collect(),
            sku: c("variant sku"),
            price: c("variant price"),
            compare_at: c("variant compare at price"),
            cost: c("cost per item"),
            qty: c("variant inventory qty"),
            barcode: c("variant barcode"),
            image: c("image src"),
            variant_image: c("variant image"),
            group: None,
        }
    }

    fn push(&mut self, check: &RowCheck, line: u64, r: &[&str], out: &mut Out) {
        let handle = cell(r, self.handle);
        if self.group.as_ref().is_some_and(|g| g.handle != handle) {
            self.flush(check, out, true);
        }
        if handle.is_empty() {
            out.push_back(Err(check.error(
                line,
                r,
                self.handle,
                Some(""),
                "missing_key",
                "a shopify row without a handle".into(),
            )));
            return;
        }
        let g = self.group.get_or_insert_with(|| Group {
            handle: handle.to_owned(),
            title: cell(r, self.title).to_owned(),
            body: cell(r, self.body).to_owned(),
            vendor: cell(r, self.vendor).to_owned(),
            category: self
                .category
                .iter()
                .map(|i| cell(r, Some(*i)))
                .find(|c| !c.is_empty())
                .map(levels)
                .unwrap_or_default(),
            option_names: self.options.iter().map(|(n, _)| cell(r, *n).to_owned()).collect(),
            rows: Vec::new(),
            bytes: 0,
            started: false,
            variants: 0,
        });
        g.bytes += r.iter().map(|c| c.len()).sum::<usize>();
        g.rows.push((line, r.iter().map(|c| (*c).to_owned()).collect()));
        if g.rows.len() >= MAX_GROUP_ROWS || g.bytes >= MAX_GROUP_BYTES {
            self.flush(check, out, false);
        }
    }

    /// The option values of a row.
    fn option_values<'a>(&self, r: &[&'a str]) -> Vec<&'a str> {
        self.options.iter().map(|(_, v)| cell(r, *v)).collect()
    }

    /// Whether a row is a variant (rather than a further image of the product).
    fn is_variant(&self, r: &[&str]) -> bool {
        self.option_values(r).iter().any(|v| !v.is_empty())
            || [self.sku, self.price, self.barcode]
                .iter()
                .any(|i| !cell(r, *i).is_empty())
    }

    /// Gives out the rows held: at the end of a product (`end`), or a part of a large one.
    fn flush(&mut self, check: &RowCheck, out: &mut Out, end: bool) {
        let Some(mut g) = self.group.take() else {
            return;
        };
        let rows = std::mem::take(&mut g.rows);
        g.bytes = 0;
        let refs: Vec<(u64, Vec<&str>)> = rows
            .iter()
            .map(|(line, cells)| (*line, cells.iter().map(String::as_str).collect()))
            .collect();
        let variants: Vec<&(u64, Vec<&str>)> = refs.iter().filter(|(_, r)| self.is_variant(r)).collect();
        let images: Vec<&str> = refs
            .iter()
            .map(|(_, r)| cell(r, self.image))
            .filter(|i| !i.is_empty())
            .collect();
        if !g.started {
            g.started = true;
            let single = variants.len() <= 1
                && variants.first().is_none_or(|(_, r)| {
                    let values = self.option_values(r);
                    values.iter().all(|v| v.is_empty())
                        || (values
                            .first()
                            .is_some_and(|v| v.eq_ignore_ascii_case("default title"))
                            && values.iter().skip(1).all(|v| v.is_empty()))
                });
            if single {
                let (line, r) = variants
                    .first()
                    .copied()
                    .or(refs.first())
                    .map_or((0, &[][..]), |(l, r)| (*l, &r[..]));
                self.single(check, &g, line, r, &images, out);
                g.variants += 1;
                if !end {
                    self.group = Some(g);
                }
                return;
            }
            if let Some((line, r)) = refs.first() {
                self.parent(check, &g, *line, r, &images, &variants, out);
            }
        }
        for (line, r) in variants {
            g.variants += 1;
            self.variant(check, &g, *line, r, out);
        }
        if !end {
            self.group = Some(g);
        }
    }

    /// The product's own values (the parent's, or a single product's).
    fn product_fields(&self, g: &Group, images: &[&str]) -> Vec<Value<'static>> {
        let mut fields: Vec<Value<'static>> = [
            Some(Value::computed(Target::Title, self.title, g.title.clone())),
            field(Target::Description, self.body, g.body.clone()),
            field(Target::Brand, self.vendor, g.vendor.clone()),
            field(
                Target::CategoryPath,
                self.category.first().copied(),
                g.category.clone(),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        fields.extend(
            images
                .iter()
                .filter_map(|i| field(Target::ImageUrl, self.image, *i)),
        );
        fields
    }

    /// A variant's prices, stock, barcode and image.
    fn variant_fields(&self, r: &[&str]) -> Vec<Value<'static>> {
        [
            field(Target::Ean, self.barcode, cell(r, self.barcode)),
            field(Target::RetailPrice, self.price, cell(r, self.price)).map(Value::dot),
            field(Target::Msrp, self.compare_at, cell(r, self.compare_at)).map(Value::dot),
            field(Target::CostPrice, self.cost, cell(r, self.cost)).map(Value::dot),
            field(Target::Stock, self.qty, stock(cell(r, self.qty))).map(Value::dot),
            field(Target::ImageUrl, self.variant_image, cell(r, self.variant_image)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// A product with one `Default Title` variant (or none): one row, no parent.
    fn single(&self, check: &RowCheck, g: &Group, line: u64, r: &[&str], images: &[&str], out: &mut Out) {
        if let Some(e) = check.too_large(line, r) {
            out.push_back(Err(e));
            return;
        }
        let sku = match cell(r, self.sku) {
            "" => g.handle.clone(),
            s => s.to_owned(),
        };
        let mut fields = vec![Value::computed(Target::Sku, self.sku.or(self.handle), sku)];
        fields.extend(self.product_fields(g, images));
        fields.extend(self.variant_fields(r));
        let values = Values {
            fields,
            attributes: Vec::new(),
        };
        out.push_back(check.validate(line, r, &values));
    }

    /// The parent of a product with variants: SKU the handle, no price.
    #[allow(clippy::too_many_arguments)]
    fn parent(
        &self,
        check: &RowCheck,
        g: &Group,
        line: u64,
        r: &[&str],
        images: &[&str],
        variants: &[&(u64, Vec<&str>)],
        out: &mut Out,
    ) {
        if let Some(e) = check.too_large(line, r) {
            out.push_back(Err(e));
            return;
        }
        let mut fields = vec![Value::computed(Target::Sku, self.handle, g.handle.clone())];
        fields.extend(self.product_fields(g, images));
        // Each option with the values its variants take, in order.
        let mut attributes = Vec::new();
        for (n, name) in g.option_names.iter().enumerate() {
            let mut values: Vec<&str> = Vec::new();
            for (_, v) in variants {
                let value = self.option_values(v).get(n).copied().unwrap_or_default();
                if !value.is_empty() && !values.contains(&value) {
                    values.push(value);
                }
            }
            if !name.is_empty() && !values.is_empty() {
                let column = self.options.get(n).and_then(|(_, v)| *v);
                attributes.push((name.clone(), joined_list(values), column));
            }
        }
        let values = Values { fields, attributes };
        out.push_back(check.validate(line, r, &values));
    }

    /// A variant of a product with variants.
    fn variant(&self, check: &RowCheck, g: &Group, line: u64, r: &[&str], out: &mut Out) {
        if let Some(e) = check.too_large(line, r) {
            out.push_back(Err(e));
            return;
        }
        let values = self.option_values(r);
        let given: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
        let sku = match cell(r, self.sku) {
            "" => {
                let slug = slugify(&given.join(" "), 100);
                if slug.is_empty() {
                    format!("{}-{}", g.handle, g.variants)
                } else {
                    format!("{}-{slug}", g.handle)
                }
            }
            s => s.to_owned(),
        };
        let title = if given.is_empty() {
            g.title.clone()
        } else {
            format!("{} - {}", g.title, given.join(" / "))
        };
        let attributes = values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| {
                let name = match g.option_names.get(n).map(String::as_str) {
                    Some("") | None => format!("Option{}", n + 1),
                    Some(name) => name.to_owned(),
                };
                let column = self.options.get(n).and_then(|(_, c)| *c);
                (name, (*v).to_owned(), column)
            })
            .collect();
        let mut fields = vec![
            Value::computed(Target::Sku, self.sku, sku),
            Value::computed(Target::ParentSku, self.handle, g.handle.clone()),
            // The title only when the product has one: a variant's own row has none.
            Value::computed(
                Target::Title,
                self.title,
                if g.title.is_empty() { String::new() } else { title },
            ),
        ];
        fields.extend(
            [
                field(Target::Brand, self.vendor, g.vendor.clone()),
                field(
                    Target::CategoryPath,
                    self.category.first().copied(),
                    g.category.clone(),
                ),
            ]
            .into_iter()
            .flatten(),
        );
        fields.extend(self.variant_fields(r));
        let values = Values { fields, attributes };
        out.push_back(check.validate(line, r, &values));
    }
}

#[cfg(test)]
mod tests {
    use pm_domain::{Amount, Currency};

    use super::*;
    use crate::rows::{CsvRows, ReadOptions};

    fn read(text: &str) -> (Option<&'static str>, bool, Vec<ProductRow>, Vec<RowError>) {
        let options = ReadOptions {
            currency: Some(Currency::parse("EUR").unwrap()),
            ..Default::default()
        };
        let mut rows = CsvRows::open(text.as_bytes(), options).unwrap();
        let (profile, confident) = (rows.info().profile, rows.info().suggestion.confident);
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next_row() {
            match r.unwrap() {
                Ok(p) => ok.push(p),
                Err(e) => bad.push(*e),
            }
        }
        (profile, confident, ok, bad)
    }

    fn amount(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    fn attrs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn a_woocommerce_export_with_a_variable_product_its_variations_and_a_simple_one() {
        let text = "\u{FEFF}ID,Type,SKU,\"GTIN, UPC, EAN, or ISBN\",Name,Published,Is featured?,Visibility in catalog,Short description,Description,In stock?,Stock,Sale price,Regular price,Categories,Tags,Images,Parent,Brands,Attribute 1 name,Attribute 1 value(s),Attribute 1 visible,Attribute 1 global,Attribute 2 name,Attribute 2 value(s),Attribute 2 visible,Attribute 2 global\n\
            10,variable,HOODIE,,Hoodie,1,0,visible,Warm,\"A warm hoodie.\\nTwo lines\",1,,,,\"Clothing > Hoodies, Clothing\",,\"https://shop.test/h1.jpg, https://shop.test/h2.jpg\",,Acme,Color,\"Blue, Green\",1,1,Size,\"S, M\",1,1\n\
            11,variation,HOODIE-BLUE-S,4006381333931,Hoodie - Blue S,1,0,visible,,,1,5,39.90,45.00,,,https://shop.test/h-blue.jpg,HOODIE,,Color,Blue,,1,Size,S,,1\n\
            12,variation,,0887276302195,,1,0,visible,,,1,'-2,,45,,,,id:10,,Color,Green,,1,Size,M,,1\n\
            13,\"simple, virtual\",MUG-1,,Mug,1,0,visible,A mug,,1,3,,9.5,Kitchen > Mugs,,https://shop.test/mug.jpg,,\"Acme\\, Inc., Other\",,,,,,,,\n\
            14,variation,X-1,,X,1,0,visible,,,1,1,,1,,,,id:99,,,,,,,,,\n";
        let (profile, confident, ok, bad) = read(text);
        assert_eq!((profile, confident), (Some("woocommerce"), true));
        assert_eq!(ok.len(), 4, "{ok:#?} {bad:#?}");
        let parent = &ok[0];
        assert_eq!(
            (
                parent.line,
                parent.sku.as_deref(),
                parent.title.as_str(),
                parent.parent_sku.as_deref()
            ),
            (2, Some("HOODIE"), "Hoodie", None)
        );
        assert_eq!(parent.category_path.as_deref(), Some("Clothing > Hoodies"));
        assert_eq!(
            parent.images,
            ["https://shop.test/h1.jpg", "https://shop.test/h2.jpg"]
        );
        assert_eq!(parent.description.as_deref(), Some("A warm hoodie.\nTwo lines"));
        assert_eq!(parent.brand.as_deref(), Some("Acme"));
        assert_eq!(
            parent.attributes,
            attrs(&[("Color", "Blue, Green"), ("Size", "S, M")])
        );
        assert!(parent.prices.is_empty());
        let blue = &ok[1];
        assert_eq!(
            (
                blue.sku.as_deref(),
                blue.parent_sku.as_deref(),
                blue.title.as_str()
            ),
            (Some("HOODIE-BLUE-S"), Some("HOODIE"), "Hoodie - Blue S")
        );
        assert_eq!(blue.ean.as_ref().unwrap().as_str(), "4006381333931");
        assert_eq!(
            blue.prices,
            [
                (Target::RetailPrice, amount("45.00")),
                (Target::SalePrice, amount("39.90")),
            ]
        );
        assert_eq!(blue.stock, Some(5));
        assert_eq!(blue.attributes, attrs(&[("Color", "Blue"), ("Size", "S")]));
        assert_eq!(blue.images, ["https://shop.test/h-blue.jpg"]);
        // No SKU (the EAN is the key), no name (the parent's and the values), `id:10`, a
        // negative stock escaped with `'`.
        let green = &ok[2];
        assert_eq!(
            (
                green.sku.as_deref(),
                green.parent_sku.as_deref(),
                green.title.as_str()
            ),
            (None, Some("HOODIE"), "Hoodie - Green, M")
        );
        assert_eq!(green.ean.as_ref().unwrap().as_str(), "0887276302195");
        assert_eq!(green.stock, Some(0));
        let mug = &ok[3];
        assert_eq!(
            (
                mug.sku.as_deref(),
                mug.parent_sku.as_deref(),
                mug.brand.as_deref()
            ),
            (Some("MUG-1"), None, Some("Acme, Inc."))
        );
        assert_eq!(mug.prices, [(Target::RetailPrice, amount("9.5"))]);
        assert_eq!(mug.category_path.as_deref(), Some("Kitchen > Mugs"));
        assert_eq!(mug.description.as_deref(), Some("A mug"));
        assert!(mug.attributes.is_empty());
        let got: Vec<(u64, &str, Option<&str>)> = bad
            .iter()
            .map(|e| (e.line, e.code, e.column.as_deref()))
            .collect();
        assert_eq!(got, [(6, "unknown_parent", Some("Parent"))]);
    }

    #[test]
    fn a_shopify_export_with_variants_image_rows_and_a_default_title_product() {
        let text = "Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,Option1 Name,Option1 Value,Option1 Linked To,Option2 Name,Option2 Value,Option2 Linked To,Option3 Name,Option3 Value,Option3 Linked To,Variant SKU,Variant Grams,Variant Inventory Tracker,Variant Inventory Qty,Variant Inventory Policy,Variant Fulfillment Service,Variant Price,Variant Compare At Price,Variant Requires Shipping,Variant Taxable,Variant Barcode,Image Src,Image Position,Image Alt Text,Gift Card,SEO Title,SEO Description,Variant Image,Variant Weight Unit,Variant Tax Code,Cost per item,Status\n\
            classic-tee,Classic Tee,<p>Soft cotton</p>,Acme,Apparel & Accessories > Clothing > Shirts,Shirts,tee,true,Size,S,,Color,Black,,,,,TEE-S-BLK,200,shopify,10,deny,manual,19.90,25.00,true,true,4006381333931,https://cdn.shopify.test/tee-1.jpg,1,,false,,,https://cdn.shopify.test/tee-s.jpg,kg,,8.00,active\n\
            classic-tee,,,,,,,,,M,,,Black,,,,,,200,shopify,-1,deny,manual,19.90,,true,true,0887276302195,,,,,,,,kg,,8.00,\n\
            classic-tee,,,,,,,,,,,,,,,,,,,,,,,,,,,,https://cdn.shopify.test/tee-2.jpg,2,,,,,,,,,\n\
            gift-card,Gift Card,<p>A card</p>,Acme,,Gift,,true,Title,Default Title,,,,,,,,GC-1,0,,,deny,manual,10.00,,false,false,,https://cdn.shopify.test/gc.jpg,1,,true,,,,kg,,,active\n\
            mug,Mug,,Acme,,Kitchen,,true,Title,Default Title,,,,,,,,,0,,,deny,manual,5.00,,true,true,12345,,,,false,,,,kg,,,active\n";
        let (profile, confident, ok, bad) = read(text);
        assert_eq!((profile, confident), (Some("shopify"), true));
        let got: Vec<(u64, Option<&str>, Option<&str>, &str)> = ok
            .iter()
            .map(|p| {
                (
                    p.line,
                    p.sku.as_deref(),
                    p.parent_sku.as_deref(),
                    p.title.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (2, Some("classic-tee"), None, "Classic Tee"),
                (
                    2,
                    Some("TEE-S-BLK"),
                    Some("classic-tee"),
                    "Classic Tee - S / Black"
                ),
                (
                    3,
                    Some("classic-tee-m-black"),
                    Some("classic-tee"),
                    "Classic Tee - M / Black"
                ),
                (5, Some("GC-1"), None, "Gift Card"),
            ]
        );
        let parent = &ok[0];
        assert_eq!(
            parent.images,
            [
                "https://cdn.shopify.test/tee-1.jpg",
                "https://cdn.shopify.test/tee-2.jpg"
            ]
        );
        assert!(parent.prices.is_empty() && parent.ean.is_none() && parent.stock.is_none());
        assert_eq!(parent.description.as_deref(), Some("<p>Soft cotton</p>"));
        assert_eq!(parent.brand.as_deref(), Some("Acme"));
        assert_eq!(
            parent.category_path.as_deref(),
            Some("Apparel & Accessories > Clothing > Shirts")
        );
        assert_eq!(parent.attributes, attrs(&[("Size", "S, M"), ("Color", "Black")]));
        let s = &ok[1];
        assert_eq!(s.ean.as_ref().unwrap().as_str(), "4006381333931");
        assert_eq!(
            s.prices,
            [
                (Target::RetailPrice, amount("19.90")),
                (Target::CostPrice, amount("8.00")),
                (Target::Msrp, amount("25.00")),
            ]
        );
        assert_eq!(s.stock, Some(10));
        assert_eq!(s.attributes, attrs(&[("Size", "S"), ("Color", "Black")]));
        assert_eq!(s.images, ["https://cdn.shopify.test/tee-s.jpg"]);
        assert_eq!(
            (s.brand.as_deref(), s.description.as_deref()),
            (Some("Acme"), None)
        );
        let m = &ok[2];
        assert_eq!(
            (m.stock, m.ean.as_ref().unwrap().as_str()),
            (Some(0), "0887276302195")
        );
        let card = &ok[3];
        assert!(card.attributes.is_empty());
        assert_eq!(card.images, ["https://cdn.shopify.test/gc.jpg"]);
        assert_eq!(card.prices, [(Target::RetailPrice, amount("10.00"))]);
        assert_eq!(card.category_path.as_deref(), Some("Gift"));
        // An invalid barcode is the row's error, as anywhere else.
        let got: Vec<(u64, &str, Option<&str>)> = bad
            .iter()
            .map(|e| (e.line, e.code, e.column.as_deref()))
            .collect();
        assert_eq!(got, [(6, "bad_gtin", Some("Variant Barcode"))]);
    }

    #[test]
    fn ordinary_supplier_files_are_not_shop_exports() {
        let h = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        for headers in [
            h(&[
                "Code EAN",
                "Désignation",
                "Marque",
                "Prix HT",
                "Quantité",
                "Référence",
                "Type",
                "ID",
                "Parent",
            ]),
            h(&["ID", "Type", "SKU", "Name", "Price", "Stock", "Images"]),
            h(&["Handle", "Title", "Price", "Vendor", "Variant SKU"]),
            h(&["sku", "title", "regular price", "sale price", "categories"]),
        ] {
            assert_eq!(detect(&headers), None, "{headers:?}");
        }
        let (profile, _, ok, bad) = read(
            "Code EAN;Désignation;Marque;Prix HT;Quantité;Type;Parent\n4006381333931;Stylo;Stabilo;1,50;12;variable;X\n",
        );
        assert_eq!((profile, ok.len(), bad.len()), (None, 1, 0));
        assert_eq!(ok[0].parent_sku, None);
    }

    #[test]
    fn a_given_mapping_wins_over_the_profile() {
        let text = "Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant SKU,Variant Price\n\
            tee,Tee,,Size,S,T-S,1\n";
        let options = ReadOptions {
            named_mapping: Some(vec![
                ("Variant SKU".into(), Target::Sku),
                ("Title".into(), Target::Title),
            ]),
            ..Default::default()
        };
        let mut rows = CsvRows::open(text.as_bytes(), options).unwrap();
        assert_eq!(rows.info().profile, None);
        let p = rows.next_row().unwrap().unwrap().unwrap();
        assert_eq!((p.sku.as_deref(), p.parent_sku.as_deref()), (Some("T-S"), None));
    }

    #[test]
    fn a_shopify_product_larger_than_the_bound_is_given_out_in_parts() {
        let mut text =
            String::from("Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant SKU,Variant Price\n");
        for n in 0..=MAX_GROUP_ROWS {
            let title = if n == 0 { "Big" } else { "" };
            let name = if n == 0 { "Size" } else { "" };
            text.push_str(&format!("big,{title},,{name},{n},,1\n"));
        }
        text.push_str("next,Next,,Title,Default Title,N-1,2\n");
        let (_, _, ok, bad) = read(&text);
        assert!(bad.is_empty(), "{:?}", bad.first());
        assert_eq!(ok.len(), 1 + MAX_GROUP_ROWS + 1 + 1);
        assert_eq!(ok[0].sku.as_deref(), Some("big"));
        let last_big = &ok[MAX_GROUP_ROWS + 1];
        let n = MAX_GROUP_ROWS.to_string();
        assert_eq!(last_big.sku, Some(format!("big-{n}")));
        assert_eq!(last_big.title, format!("Big - {n}"));
        assert_eq!(last_big.parent_sku.as_deref(), Some("big"));
        assert_eq!(ok.last().unwrap().sku.as_deref(), Some("N-1"));
    }

    #[test]
    fn woocommerce_lists_and_descriptions_are_unescaped() {
        assert_eq!(wc_list(r"a\, b, c ,, d"), ["a, b", "c", "d"]);
        assert_eq!(wc_description(r"one\ntwo \\n three"), "one\ntwo \\n three");
        assert_eq!(levels(" A>B >  C "), "A > B > C");
    }
}
