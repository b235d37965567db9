//! Reading suppliers' files: the stages of an import before anything is written.
//!
//! - [`decode`]: which encoding a file is in (BOM, UTF-8, or a guess among the legacy ones) and
//!   a reader that turns it into UTF-8 as it streams, never holding the whole file.
//! - [`dialect`]: which delimiter a text file uses and on which line its header is.
//! - [`cells`]: what a cell means: product codes restored to their digits (or refused when a
//!   spreadsheet lost them), decimals with commas or thousands separators.
//! - [`mapping`]: which column is which field, suggested from header names in English, French
//!   and German and from the values themselves.
//! - [`rows`]: the stages together for a text file: validated product rows, or rejects with
//!   their line, column, value and reason, streamed.
//! - [`sheets`]: the same for XLSX, XLS, XLSB and ODS (calamine), with title rows above the
//!   header skipped and codes stored as numbers restored.
//! - [`template`]: a supplier's saved mapping (JSON): which columns feed which field or
//!   attribute, through which transforms (trim, case, regex, split, prices times a factor...),
//!   checked when saved and compiled once per file.
//! - [`profiles`]: WooCommerce's and Shopify's own product exports, recognised from their
//!   header and read by their rules (variable products and variations, options, image rows)
//!   without a mapping.
//!
//! Nothing here does I/O beyond the `Read` it is given, so every stage is tested on bytes made
//! in the tests, and the session actor that runs an import (issue 8) composes them.

pub mod cells;
pub mod decode;
pub mod dialect;
pub mod mapping;
pub mod profiles;
pub mod rows;
pub mod sheets;
pub mod template;
