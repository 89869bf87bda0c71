//! The kit every service shares, once: telemetry (JSON logs, EMF metrics), configuration,
//! the error type and its problem+json mapping, the versioned event contracts, SQS batch
//! handling, idempotency records, and the transactional outbox with its relay.

pub mod config;
pub mod deadline;
pub mod dynamo;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod memory;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod page;
pub mod prime;
pub mod rate_limit;
pub mod relay;
pub mod schedule;
pub mod sqs;
pub mod telemetry;
