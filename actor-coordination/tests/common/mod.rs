//! Shared support for actor-coordination's integration tests.
//!
//! Each test binary that needs it declares `mod common;`; not every binary uses every item.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod lease_conformance;
pub mod postgres;
