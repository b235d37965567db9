//! pm-actors
