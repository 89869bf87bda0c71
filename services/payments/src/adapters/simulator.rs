//! The built-in payment provider: deterministic outcomes from the card token
//! ([`crate::domain::CardToken`]) and a ledger of what it did per idempotency key, so a
//! repeated charge or refund returns the first answer and is never performed twice.

use chrono::Utc;
use kit::money::Money;
use uuid::Uuid;

use crate::{
    domain::{CardToken, ChargeOutcome, Decision},
    ports::{
        ChargeLedger, ChargeRequest, LedgerEntry, Operation, PaymentProvider, ProviderError,
        RepositoryError,
    },
};

/// The simulated provider on `ledger`.
#[derive(Debug, Clone)]
pub struct Simulator<L> {
    ledger: L,
    recovered: bool,
}

impl<L: ChargeLedger> Simulator<L> {
    /// `recovered` brings `tok_unavailable` back (see [`crate::config::SIMULATOR_RECOVERED_VAR`]).
    pub fn new(ledger: L, recovered: bool) -> Self {
        Simulator { ledger, recovered }
    }

    async fn record(
        &self,
        operation: Operation,
        key: &str,
        amount: Money,
        decline_reason: Option<String>,
    ) -> Result<LedgerEntry, ProviderError> {
        let entry = LedgerEntry {
            key: key.to_owned(),
            operation,
            amount,
            reference: format!("sim_{}", Uuid::now_v7().simple()),
            decline_reason,
            recorded_at: Utc::now(),
        };
        self.ledger.record(&entry).await.map_err(unreachable)
    }
}

fn unreachable(error: RepositoryError) -> ProviderError {
    ProviderError::Unreachable(Box::new(error))
}

impl<L: ChargeLedger> PaymentProvider for Simulator<L> {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let key = &request.idempotency_key;
        if let Some(first) = self
            .ledger
            .find(Operation::Charge, key)
            .await
            .map_err(unreachable)?
        {
            return Ok(first.outcome());
        }
        let decline_reason =
            match CardToken::parse(&request.card_token).decide(request.attempt, self.recovered) {
                Decision::Approve => None,
                Decision::Decline { reason } => Some(reason),
                Decision::FailTransiently { why } => return Err(ProviderError::Transient(why)),
            };
        let stored = self
            .record(Operation::Charge, key, request.amount, decline_reason)
            .await?;
        Ok(stored.outcome())
    }

    async fn refund(&self, idempotency_key: &str, amount: Money) -> Result<String, ProviderError> {
        let charged = self
            .ledger
            .find(Operation::Charge, idempotency_key)
            .await
            .map_err(unreachable)?;
        if !matches!(&charged, Some(charge) if charge.decline_reason.is_none()) {
            return Err(ProviderError::NothingToRefund(idempotency_key.to_owned()));
        }
        let stored = self
            .record(Operation::Refund, idempotency_key, amount, None)
            .await?;
        Ok(stored.reference)
    }
}

#[cfg(test)]
mod tests {
    use kit::money::Currency;

    use super::*;
    use crate::adapters::memory::MemoryPayments;

    fn request(token: &str, attempt: u32) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: "order-1".into(),
            amount: Money::new(500, Currency::parse("EUR").unwrap()).unwrap(),
            card_token: token.into(),
            attempt,
        }
    }

    #[tokio::test]
    async fn a_repeated_charge_returns_the_first_answer_without_a_second_ledger_entry() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        let first = simulator.charge(&request("tok_approve", 1)).await.unwrap();
        let again = simulator.charge(&request("tok_approve", 2)).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(simulator.ledger.charges("order-1"), 1);
    }

    #[tokio::test]
    async fn a_repeated_charge_keeps_its_first_answer_even_with_another_token() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        let declined = simulator
            .charge(&request("tok_decline_stolen_card", 1))
            .await
            .unwrap();
        assert!(
            matches!(declined, ChargeOutcome::Declined { ref reason, .. } if reason == "stolen_card")
        );
        let again = simulator.charge(&request("tok_approve", 1)).await.unwrap();
        assert_eq!(again, declined);
    }

    #[tokio::test]
    async fn transient_failures_leave_no_ledger_entry() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        assert!(matches!(
            simulator.charge(&request("tok_unavailable", 1)).await,
            Err(ProviderError::Transient(_))
        ));
        assert_eq!(simulator.ledger.charges("order-1"), 0);
    }

    #[tokio::test]
    async fn only_an_authorized_charge_can_be_refunded_and_only_once() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        let amount = request("tok_approve", 1).amount;
        assert!(matches!(
            simulator.refund("order-1", amount).await,
            Err(ProviderError::NothingToRefund(_))
        ));
        simulator.charge(&request("tok_approve", 1)).await.unwrap();
        let first = simulator.refund("order-1", amount).await.unwrap();
        assert_eq!(simulator.refund("order-1", amount).await.unwrap(), first);
        assert_eq!(simulator.ledger.refunds("order-1"), 1);
    }
}
