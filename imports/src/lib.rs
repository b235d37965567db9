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
//!
//! Nothing here does I/O beyond the `Read` it is given, so every stage is tested on bytes made
//! in the tests, and the session actor that runs an import (issue 8) composes them.

pub mod cells;
pub mod decode;
pub mod dialect;
pub mod mapping;
pub mod rows;
pub mod sheets;
