//! pm-api
