//! Versioned event contracts: the envelope every event travels in and the typed payload of
//! each event. JSON Schemas generated from these types are committed under
//! `shared/kit/schemas/`; changes within a version must be additive.

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, schema_for};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::money::Money;

/// The envelope around every event: what the outbox stores and what EventBridge carries as
/// `detail`. `data` stays raw JSON until [`Envelope::decode`] turns it into an [`Event`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Unique per event; consumers use it as their idempotency key.
    pub id: Uuid,
    /// The event type, e.g. `OrderPlaced`; also the EventBridge `detail-type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Contract version of `data` for this type.
    pub version: u32,
    /// The producing service, e.g. `shop.orders`; also the EventBridge `source`.
    pub source: String,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// Shared by every event of one business flow (one order's saga).
    pub correlation_id: String,
    /// The id of the event (or request) that caused this one.
    pub causation_id: Option<String>,
    /// The typed payload, see [`Event`].
    pub data: serde_json::Value,
}

/// Why an envelope cannot be understood: a poison message, never worth retrying as is.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("unsupported version {version} of {event_type}")]
    UnsupportedVersion { event_type: String, version: u32 },
    #[error("{event_type} payload does not match its contract")]
    InvalidPayload {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("event payload cannot be encoded")]
    Encode(#[source] serde_json::Error),
    #[error("{event_type} comes from `{source_name}`, not from its owner `{owner}`")]
    ForeignSource {
        event_type: String,
        source_name: String,
        owner: &'static str,
    },
}

/// The `source` of the events each service publishes (the EventBridge `source`). Every event
/// type has exactly one owner; consumers refuse an event from any other source.
pub const ORDERS_SOURCE: &str = "shop.orders";
pub const PAYMENTS_SOURCE: &str = "shop.payments";
pub const NOTIFY_SOURCE: &str = "shop.notify";

macro_rules! events {
    ($($name:ident => $owner:ident),+ $(,)?) => {
        /// Every event of the application, typed.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($name($name),)+
        }

        impl Event {
            /// The event type name (`detail-type`).
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$name(_) => stringify!($name),)+
                }
            }

            /// The only `source` this event type may come from: the service that owns it.
            pub fn owner(&self) -> &'static str {
                match self {
                    $(Event::$name(_) => $owner,)+
                }
            }

            fn data(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self {
                    $(Event::$name(data) => serde_json::to_value(data),)+
                }
            }

            fn decode(event_type: &str, data: &serde_json::Value) -> Result<Self, ContractError> {
                match event_type {
                    $(stringify!($name) => Ok(Event::$name(payload(event_type, data)?)),)+
                    other => Err(ContractError::UnknownType(other.to_owned())),
                }
            }
        }

        /// `(file name, schema)` for the envelope and every payload, as committed.
        pub fn schemas() -> Vec<(String, Schema)> {
            let mut all = vec![("envelope.json".to_owned(), schema_for!(Envelope))];
            $(all.push((format!("{}.v{}.json", stringify!($name), VERSION), schema_for!($name)));)+
            all
        }
    };
}

events!(
    OrderPlaced => ORDERS_SOURCE,
    OrderConfirmed => ORDERS_SOURCE,
    OrderCancelled => ORDERS_SOURCE,
    PaymentAuthorized => PAYMENTS_SOURCE,
    PaymentDeclined => PAYMENTS_SOURCE,
    PaymentRefunded => PAYMENTS_SOURCE,
    NotificationSent => NOTIFY_SOURCE,
);

/// The contract version every event type is at today.
pub const VERSION: u32 = 1;

fn payload<T: DeserializeOwned>(
    event_type: &str,
    data: &serde_json::Value,
) -> Result<T, ContractError> {
    T::deserialize(data).map_err(|source| ContractError::InvalidPayload {
        event_type: event_type.to_owned(),
        source,
    })
}

impl Envelope {
    /// Wraps `event` in a new envelope from `source` (e.g. `shop.orders`).
    pub fn new(
        source: &str,
        event: &Event,
        correlation_id: &str,
        causation_id: Option<&str>,
        time: DateTime<Utc>,
    ) -> Result<Self, ContractError> {
        Ok(Envelope {
            id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            version: VERSION,
            source: source.to_owned(),
            time,
            correlation_id: correlation_id.to_owned(),
            causation_id: causation_id.map(str::to_owned),
            data: event.data().map_err(ContractError::Encode)?,
        })
    }

    /// The envelope of `event` from `source`, caused by this one: same saga (correlation id),
    /// with this event's id as its causation id.
    pub fn follow_up(
        &self,
        source: &str,
        event: &Event,
        time: DateTime<Utc>,
    ) -> Result<Envelope, ContractError> {
        Envelope::new(
            source,
            event,
            &self.correlation_id,
            Some(&self.id.to_string()),
            time,
        )
    }

    /// The typed event inside, checking type, version and that it comes from the service that
    /// owns its type (a forged or misrouted event is refused).
    pub fn decode(&self) -> Result<Event, ContractError> {
        let event = Event::decode(&self.event_type, &self.data)?;
        if self.version != VERSION {
            return Err(ContractError::UnsupportedVersion {
                event_type: self.event_type.clone(),
                version: self.version,
            });
        }
        if self.source != event.owner() {
            return Err(ContractError::ForeignSource {
                event_type: self.event_type.clone(),
                source_name: self.source.clone(),
                owner: event.owner(),
            });
        }
        Ok(event)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLine {
    pub sku: String,
    #[schemars(range(min = 1))]
    pub quantity: u32,
    pub unit_price: Money,
}

/// A customer placed an order; payments charges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlaced {
    pub order_id: String,
    pub customer_id: String,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    /// The payment method token the customer chose (never a card number).
    pub card_token: String,
    pub placed_at: DateTime<Utc>,
}

/// The order's payment was authorized and the order is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderConfirmed {
    pub order_id: String,
    pub customer_id: String,
    pub total: Money,
    pub confirmed_at: DateTime<Utc>,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    PaymentDeclined,
    CustomerRequested,
    /// The payment did not settle within the saga timeout (see the orders timeout function).
    PaymentTimeout,
}

/// The order is cancelled; an authorized payment for it must be refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {
    pub order_id: String,
    pub customer_id: String,
    pub total: Money,
    pub reason: CancellationReason,
    /// Human-readable detail, e.g. the decline reason.
    pub detail: Option<String>,
    pub cancelled_at: DateTime<Utc>,
}

/// The payment provider authorized the order's amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentAuthorized {
    pub order_id: String,
    pub payment_id: String,
    pub customer_id: String,
    pub amount: Money,
    pub authorized_at: DateTime<Utc>,
}

/// The payment provider declined the order's payment (a business outcome, not an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentDeclined {
    pub order_id: String,
    pub payment_id: String,
    pub customer_id: String,
    pub amount: Money,
    pub reason: String,
    pub declined_at: DateTime<Utc>,
}

/// An authorized payment was refunded after the order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRefunded {
    pub order_id: String,
    pub payment_id: String,
    pub customer_id: String,
    pub amount: Money,
    pub refunded_at: DateTime<Utc>,
}

/// A notification was sent to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationSent {
    pub notification_id: String,
    pub customer_id: String,
    pub order_id: String,
    /// The event type the notification is about.
    pub about: String,
    pub channel: String,
    pub sent_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::money::Currency;

    fn placed() -> Event {
        let eur = Currency::parse("EUR").unwrap();
        Event::OrderPlaced(OrderPlaced {
            order_id: "o-1".into(),
            customer_id: "c-1".into(),
            lines: vec![OrderLine {
                sku: "SKU-1".into(),
                quantity: 2,
                unit_price: Money::new(500, eur).unwrap(),
            }],
            total: Money::new(1000, eur).unwrap(),
            card_token: "tok_approve".into(),
            placed_at: Utc::now(),
        })
    }

    fn schema_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
    }

    #[test]
    fn an_envelope_round_trips_to_the_same_typed_event() {
        let event = placed();
        let envelope = Envelope::new("shop.orders", &event, "corr-1", None, Utc::now()).unwrap();
        let json = serde_json::to_string(&envelope).unwrap();
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back.decode().unwrap(), event);
        assert_eq!(back.event_type, "OrderPlaced");
        assert_eq!(back.version, VERSION);
    }

    #[test]
    fn a_follow_up_stays_in_the_saga_and_names_its_cause() {
        let cause = Envelope::new("shop.orders", &placed(), "corr-9", None, Utc::now()).unwrap();
        let next = cause
            .follow_up("shop.payments", &placed(), Utc::now())
            .unwrap();
        assert_eq!(next.correlation_id, "corr-9");
        assert_eq!(next.causation_id, Some(cause.id.to_string()));
        assert_eq!(next.source, "shop.payments");
        assert_ne!(next.id, cause.id);
    }

    #[test]
    fn unknown_types_versions_and_payloads_are_contract_errors() {
        let mut envelope = Envelope::new("shop.orders", &placed(), "c", None, Utc::now()).unwrap();
        envelope.version = 99;
        assert!(matches!(
            envelope.decode(),
            Err(ContractError::UnsupportedVersion { .. })
        ));
        envelope.version = VERSION;
        envelope.event_type = "OrderTeleported".into();
        assert!(matches!(
            envelope.decode(),
            Err(ContractError::UnknownType(_))
        ));
        envelope.event_type = "OrderPlaced".into();
        envelope.data = serde_json::json!({"order_id": 5});
        assert!(matches!(
            envelope.decode(),
            Err(ContractError::InvalidPayload { .. })
        ));
    }

    #[test]
    fn committed_schemas_match_the_types() {
        for (file, schema) in schemas() {
            let path = schema_dir().join(&file);
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{} is missing: run `make schemas`", path.display()));
            let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
            assert_eq!(
                committed,
                schema.to_value(),
                "{file} drifted from the Rust types: run `make schemas` and review the diff \
                 (changes within a version must be additive)"
            );
        }
        let committed_files = std::fs::read_dir(schema_dir()).unwrap().count();
        assert_eq!(
            committed_files,
            schemas().len(),
            "stale schema files in shared/kit/schemas"
        );
    }

    #[test]
    fn every_event_validates_against_its_committed_schema() {
        let envelope = Envelope::new("shop.orders", &placed(), "c", Some("r"), Utc::now()).unwrap();
        let load = |file: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(schema_dir().join(file)).unwrap())
                .unwrap()
        };
        let envelope_schema = jsonschema::validator_for(&load("envelope.json")).unwrap();
        assert!(envelope_schema.is_valid(&serde_json::to_value(&envelope).unwrap()));
        let payload_schema = jsonschema::validator_for(&load("OrderPlaced.v1.json")).unwrap();
        assert!(payload_schema.is_valid(&envelope.data));
        assert!(!payload_schema.is_valid(&serde_json::json!({"order_id": "o"})));
    }
}
