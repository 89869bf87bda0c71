//! Implementations of the ports: DynamoDB for real, memory for tests and local hacking, and
//! the simulated payment provider (on either store's ledger).

pub mod dynamodb;
pub mod memory;
pub mod simulator;
