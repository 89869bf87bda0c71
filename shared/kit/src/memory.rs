//! The in-memory twin of a service table, for handler tests, property tests and local
//! experiments: entities with versions, their outbox, processed-event markers and idempotency
//! records, changed all or nothing by a [`Change`] whose commit fails with the same
//! [`CommitError`]s as [`crate::dynamo::Transaction`], checked in the same order (processed
//! marker, idempotency key, guard, new entity, versioned entity). Each service's memory adapter is a
//! thin layer over a [`Table`], and its repository contract suite (`testkit::contract!`) runs
//! the same cases on it and on the DynamoDB adapter, so the twin cannot drift.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::dynamo::CommitError;
use crate::events::Envelope;
use crate::idempotency::{Key, Record};

/// An entity stored with a version (the `version` attribute of its item).
pub trait Versioned {
    fn version(&self) -> u64;
}

#[derive(Debug)]
struct State<E> {
    entities: BTreeMap<String, E>,
    outbox: Vec<Envelope>,
    processed: HashSet<String>,
    idempotency: HashMap<Key, Record>,
}

impl<E> Default for State<E> {
    fn default() -> Self {
        Self {
            entities: BTreeMap::new(),
            outbox: Vec::new(),
            processed: HashSet::new(),
            idempotency: HashMap::new(),
        }
    }
}

/// A service table in memory, keyed by entity id.
#[derive(Debug)]
pub struct Table<E> {
    state: Mutex<State<E>>,
}

impl<E> Default for Table<E> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
        }
    }
}

/// What a [`Change`] does to its entity.
#[derive(Debug, Clone)]
enum Write<E> {
    /// A new entity: [`CommitError::EntityExists`] if the id is taken.
    Create(String, E),
    /// The entity if it is still at the version: [`CommitError::EntityChanged`] otherwise.
    Update(String, E, u64),
}

/// A condition on the stored entities that a change must keep (the twin of a
/// [`crate::dynamo::Transaction::guard`] write, e.g. a cap on a customer's open orders).
type Guard<E> = Box<dyn FnOnce(&mut dyn Iterator<Item = &E>) -> bool + Send>;

/// One state change of a [`Table`], built from the same named writes as
/// [`crate::dynamo::Transaction`].
pub struct Change<E> {
    write: Write<E>,
    events: Vec<Envelope>,
    processed: Option<String>,
    idempotency: Option<(Key, Record)>,
    guard: Option<Guard<E>>,
}

impl<E: std::fmt::Debug> std::fmt::Debug for Change<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("write", &self.write)
            .field("events", &self.events.len())
            .field("processed", &self.processed)
            .field("idempotency", &self.idempotency.as_ref().map(|(k, _)| k))
            .field("guard", &self.guard.is_some())
            .finish()
    }
}

impl<E> Change<E> {
    /// Stores `entity` as new under `id`.
    pub fn create(id: impl Into<String>, entity: E) -> Self {
        Self::with(Write::Create(id.into(), entity))
    }

    /// Stores `entity` under `id` if the stored one is still at `expected`.
    pub fn update(id: impl Into<String>, entity: E, expected: u64) -> Self {
        Self::with(Write::Update(id.into(), entity, expected))
    }

    fn with(write: Write<E>) -> Self {
        Self {
            write,
            events: Vec::new(),
            processed: None,
            idempotency: None,
            guard: None,
        }
    }

    /// Adds `events` to the outbox.
    #[must_use]
    pub fn publish(mut self, events: &[Envelope]) -> Self {
        self.events.extend_from_slice(events);
        self
    }

    /// Adds the processed marker of `event_id`, when given.
    #[must_use]
    pub fn processed(mut self, event_id: Option<&str>) -> Self {
        self.processed = event_id.map(str::to_owned);
        self
    }

    /// Adds the idempotency record of a request, when given.
    #[must_use]
    pub fn idempotency(mut self, record: Option<(&Key, Record)>) -> Self {
        self.idempotency = record.map(|(key, record)| (key.clone(), record));
        self
    }

    /// Commits only if `holds` accepts the stored entities (before this change):
    /// [`CommitError::GuardRefused`] otherwise.
    #[must_use]
    pub fn guard(
        mut self,
        holds: impl FnOnce(&mut dyn Iterator<Item = &E>) -> bool + Send + 'static,
    ) -> Self {
        self.guard = Some(Box::new(holds));
        self
    }
}

impl<E: Clone + Versioned> Table<E> {
    fn state(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entity stored under `id`.
    pub fn get(&self, id: &str) -> Option<E> {
        self.state().entities.get(id).cloned()
    }

    /// The stored entities `keep` selects, in id order.
    pub fn select(&self, keep: impl Fn(&E) -> bool) -> Vec<E> {
        self.state()
            .entities
            .values()
            .filter(|e| keep(e))
            .cloned()
            .collect()
    }

    /// Every event written to the outbox so far, in order.
    pub fn outbox(&self) -> Vec<Envelope> {
        self.state().outbox.clone()
    }

    /// Whether the processed marker of `event_id` exists.
    pub fn is_processed(&self, event_id: &str) -> bool {
        self.state().processed.contains(event_id)
    }

    /// The live idempotency record of `key`.
    pub fn idempotency_record(&self, key: &Key) -> Option<Record> {
        let now = chrono::Utc::now().timestamp();
        self.state()
            .idempotency
            .get(key)
            .filter(|r| r.expires_at >= now)
            .cloned()
    }

    /// Applies every write of `change` or none, failing like the DynamoDB transaction.
    pub fn commit(&self, change: Change<E>) -> Result<(), CommitError> {
        let now = chrono::Utc::now().timestamp();
        let mut state = self.state();
        if change
            .processed
            .as_ref()
            .is_some_and(|id| state.processed.contains(id))
        {
            return Err(CommitError::AlreadyProcessed);
        }
        if let Some((key, _)) = &change.idempotency
            && state
                .idempotency
                .get(key)
                .is_some_and(|r| r.expires_at >= now)
        {
            return Err(CommitError::IdempotencyKeyTaken);
        }
        if let Some(holds) = change.guard
            && !holds(&mut state.entities.values())
        {
            return Err(CommitError::GuardRefused);
        }
        let (id, entity) = match change.write {
            Write::Create(id, entity) => {
                if state.entities.contains_key(&id) {
                    return Err(CommitError::EntityExists);
                }
                (id, entity)
            }
            Write::Update(id, entity, expected) => {
                if state.entities.get(&id).map(Versioned::version) != Some(expected) {
                    return Err(CommitError::EntityChanged);
                }
                (id, entity)
            }
        };
        if let Some(event_id) = change.processed {
            state.processed.insert(event_id);
        }
        if let Some((key, record)) = change.idempotency {
            state.idempotency.insert(key, record);
        }
        state.entities.insert(id, entity);
        state.outbox.extend(change.events);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Thing {
        name: &'static str,
        version: u64,
    }

    impl Versioned for Thing {
        fn version(&self) -> u64 {
            self.version
        }
    }

    fn thing(name: &'static str, version: u64) -> Thing {
        Thing { name, version }
    }

    fn key(k: &str) -> Key {
        Key::new("test", k).unwrap()
    }

    fn record() -> Record {
        Record::completed(
            "fp",
            &serde_json::json!({}),
            std::time::Duration::from_secs(60),
        )
    }

    #[test]
    fn a_new_entity_whose_id_is_taken_is_refused_and_nothing_of_its_change_is_written() {
        let table = Table::default();
        table
            .commit(Change::create("a", thing("first", 1)))
            .unwrap();
        let again = Change::create("a", thing("second", 1))
            .processed(Some("ev-1"))
            .idempotency(Some((&key("k"), record())));
        assert!(matches!(
            table.commit(again),
            Err(CommitError::EntityExists)
        ));
        assert_eq!(table.get("a"), Some(thing("first", 1)));
        assert!(!table.is_processed("ev-1"), "the marker is not written");
        assert!(table.idempotency_record(&key("k")).is_none());
    }

    #[test]
    fn an_update_from_a_stale_version_is_refused() {
        let table = Table::default();
        table.commit(Change::create("a", thing("v1", 1))).unwrap();
        table
            .commit(Change::update("a", thing("v2", 2), 1))
            .unwrap();
        assert!(matches!(
            table.commit(Change::update("a", thing("stale", 2), 1)),
            Err(CommitError::EntityChanged)
        ));
        assert!(matches!(
            table.commit(Change::update("missing", thing("x", 2), 1)),
            Err(CommitError::EntityChanged)
        ));
        assert_eq!(table.get("a"), Some(thing("v2", 2)));
    }

    #[test]
    fn a_processed_marker_is_checked_before_the_idempotency_key_and_the_entity() {
        let table = Table::default();
        table
            .commit(
                Change::create("a", thing("v1", 1))
                    .processed(Some("ev-1"))
                    .idempotency(Some((&key("k"), record()))),
            )
            .unwrap();
        let replay = Change::update("a", thing("v2", 2), 7)
            .processed(Some("ev-1"))
            .idempotency(Some((&key("k"), record())));
        assert!(matches!(
            table.commit(replay),
            Err(CommitError::AlreadyProcessed)
        ));
        let same_key = Change::create("a", thing("v1", 1)).idempotency(Some((&key("k"), record())));
        assert!(matches!(
            table.commit(same_key),
            Err(CommitError::IdempotencyKeyTaken)
        ));
    }

    #[test]
    fn a_change_whose_guard_refuses_the_stored_entities_writes_nothing() {
        let table = Table::default();
        table.commit(Change::create("a", thing("one", 1))).unwrap();
        let at_most_one = |things: &mut dyn Iterator<Item = &Thing>| things.count() < 1;
        let refused = Change::create("b", thing("two", 1))
            .processed(Some("ev-2"))
            .guard(at_most_one);
        assert!(matches!(
            table.commit(refused),
            Err(CommitError::GuardRefused)
        ));
        assert_eq!(table.get("b"), None);
        assert!(!table.is_processed("ev-2"));
        let replay = Change::create("b", thing("two", 1))
            .processed(Some("ev-2"))
            .guard(|_| true);
        table.commit(replay).unwrap();
        assert_eq!(table.get("b"), Some(thing("two", 1)));
    }

    #[test]
    fn a_committed_change_writes_its_entity_events_and_marker_together() {
        let table = Table::default();
        let confirmed = crate::events::OrderConfirmed {
            order_id: "o-1".into(),
            customer_id: "c-1".into(),
            total: crate::money::Money::new(100, crate::money::Currency::parse("EUR").unwrap())
                .unwrap(),
            confirmed_at: chrono::Utc::now(),
        };
        let event = crate::events::Envelope::new(
            crate::events::ORDERS_SOURCE,
            &crate::events::Event::OrderConfirmed(confirmed),
            "corr",
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        table
            .commit(
                Change::create("a", thing("v1", 1))
                    .publish(std::slice::from_ref(&event))
                    .processed(Some("ev-1")),
            )
            .unwrap();
        assert_eq!(table.outbox(), vec![event]);
        assert!(table.is_processed("ev-1"));
        assert_eq!(table.select(|t| t.name == "v1").len(), 1);
    }
}
