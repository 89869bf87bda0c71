//! The whole application under test: the saga end to end (`tests/saga.rs`), its invariants
//! under any interleaving on the in-memory adapters (`tests/interleavings.rs`), and chaos runs
//! on the local stack ([`chaos`]: `make chaos`, a small run in `tests/chaos.rs`).

pub mod chaos;
