//! Test-only crate: see `tests/saga.rs`.
