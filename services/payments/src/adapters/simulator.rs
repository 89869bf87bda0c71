//! The built-in payment provider: deterministic outcomes from the card token
//! ([`crate::domain::CardToken`]) and a ledger of what it did per idempotency key, so a
//! repeated authorize, capture, void or refund returns the first answer and is never performed
//! twice. Like a real provider it refuses a capture of a voided hold, a void of a capture and a
//! refund of anything not captured.

use chrono::Utc;
use kit::money::Money;
use uuid::Uuid;

use crate::{
    domain::{CardToken, ChargeOutcome, Decision},
    ports::{
        ChargeLedger, ChargeRequest, LedgerEntry, Operation, PaymentProvider, ProviderCall,
        ProviderError, RepositoryError,
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

    async fn find(
        &self,
        operation: Operation,
        key: &str,
    ) -> Result<Option<LedgerEntry>, ProviderError> {
        self.ledger.find(operation, key).await.map_err(unreachable)
    }

    async fn record(
        &self,
        operation: Operation,
        key: &str,
        amount: Money,
        decline_reason: Option<String>,
        card_token: Option<String>,
    ) -> Result<LedgerEntry, ProviderError> {
        let entry = LedgerEntry {
            key: key.to_owned(),
            operation,
            amount,
            reference: format!("sim_{}", Uuid::now_v7().simple()),
            decline_reason,
            card_token,
            recorded_at: Utc::now(),
        };
        self.ledger.record(&entry).await.map_err(unreachable)
    }

    /// The authorization of `key`, if the provider approved one.
    async fn authorization(&self, key: &str) -> Result<Option<LedgerEntry>, ProviderError> {
        Ok(self
            .find(Operation::Charge, key)
            .await?
            .filter(|charge| charge.decline_reason.is_none()))
    }

    /// Performs `operation` on the authorization `charge` once: the first answer is kept.
    async fn settle(
        &self,
        operation: Operation,
        charge: &LedgerEntry,
        call: &ProviderCall,
    ) -> Result<String, ProviderError> {
        if let Some(done) = self.find(operation, &call.idempotency_key).await? {
            return Ok(done.reference);
        }
        let token = CardToken::parse(charge.card_token.as_deref().unwrap_or_default());
        if let Decision::FailTransiently { why } =
            token.decide(operation, call.attempt, self.recovered)
        {
            return Err(ProviderError::Transient(why));
        }
        let stored = self
            .record(operation, &call.idempotency_key, call.amount, None, None)
            .await?;
        Ok(stored.reference)
    }
}

fn unreachable(error: RepositoryError) -> ProviderError {
    ProviderError::Unreachable(Box::new(error))
}

fn refused(operation: Operation, call: &ProviderCall, why: &'static str) -> ProviderError {
    ProviderError::Refused {
        operation: operation.as_str(),
        key: call.idempotency_key.clone(),
        why,
    }
}

impl<L: ChargeLedger> PaymentProvider for Simulator<L> {
    async fn authorize(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let key = &request.idempotency_key;
        if let Some(first) = self.find(Operation::Charge, key).await? {
            return Ok(first.outcome());
        }
        let decision = CardToken::parse(&request.card_token).decide(
            Operation::Charge,
            request.attempt,
            self.recovered,
        );
        let decline_reason = match decision {
            Decision::Approve => None,
            Decision::Decline { reason } => Some(reason),
            Decision::FailTransiently { why } => return Err(ProviderError::Transient(why)),
        };
        let card_token = Some(request.card_token.clone());
        let stored = self
            .record(
                Operation::Charge,
                key,
                request.amount,
                decline_reason,
                card_token,
            )
            .await?;
        Ok(stored.outcome())
    }

    async fn capture(&self, call: &ProviderCall) -> Result<String, ProviderError> {
        let key = &call.idempotency_key;
        let charge = self
            .authorization(key)
            .await?
            .ok_or_else(|| refused(Operation::Capture, call, "nothing was authorized"))?;
        if self.find(Operation::Void, key).await?.is_some() {
            return Err(refused(
                Operation::Capture,
                call,
                "the authorization was voided",
            ));
        }
        self.settle(Operation::Capture, &charge, call).await
    }

    async fn void(&self, call: &ProviderCall) -> Result<Option<String>, ProviderError> {
        let key = &call.idempotency_key;
        let Some(charge) = self.authorization(key).await? else {
            return Ok(None);
        };
        if self.find(Operation::Capture, key).await?.is_some() {
            return Err(refused(
                Operation::Void,
                call,
                "the authorization was captured",
            ));
        }
        self.settle(Operation::Void, &charge, call).await.map(Some)
    }

    async fn refund(&self, call: &ProviderCall) -> Result<String, ProviderError> {
        let key = &call.idempotency_key;
        let charge = self
            .authorization(key)
            .await?
            .ok_or_else(|| refused(Operation::Refund, call, "nothing was authorized"))?;
        if self.find(Operation::Capture, key).await?.is_none() {
            return Err(refused(Operation::Refund, call, "nothing was captured"));
        }
        self.settle(Operation::Refund, &charge, call).await
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

    fn call(attempt: u32) -> ProviderCall {
        ProviderCall {
            idempotency_key: "order-1".into(),
            amount: request("tok_approve", 1).amount,
            attempt,
        }
    }

    #[tokio::test]
    async fn a_repeated_authorization_returns_the_first_answer_without_a_second_ledger_entry() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        let first = simulator
            .authorize(&request("tok_approve", 1))
            .await
            .unwrap();
        let again = simulator
            .authorize(&request("tok_approve", 2))
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(simulator.ledger.count(Operation::Charge, "order-1"), 1);
    }

    #[tokio::test]
    async fn a_repeated_authorization_keeps_its_first_answer_even_with_another_token() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        let declined = simulator
            .authorize(&request("tok_decline_stolen_card", 1))
            .await
            .unwrap();
        assert!(
            matches!(declined, ChargeOutcome::Declined { ref reason, .. } if reason == "stolen_card")
        );
        let again = simulator
            .authorize(&request("tok_approve", 1))
            .await
            .unwrap();
        assert_eq!(again, declined);
    }

    #[tokio::test]
    async fn transient_failures_leave_no_ledger_entry() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        assert!(matches!(
            simulator.authorize(&request("tok_unavailable", 1)).await,
            Err(ProviderError::Transient(_))
        ));
        assert_eq!(simulator.ledger.count(Operation::Charge, "order-1"), 0);
    }

    #[tokio::test]
    async fn capture_then_refund_happen_once_each_and_a_capture_cannot_be_voided() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        assert!(matches!(
            simulator.refund(&call(1)).await,
            Err(ProviderError::Refused { .. })
        ));
        simulator
            .authorize(&request("tok_approve", 1))
            .await
            .unwrap();
        assert!(simulator.ledger.held("order-1"));
        assert!(
            matches!(
                simulator.refund(&call(1)).await,
                Err(ProviderError::Refused { .. })
            ),
            "an uncaptured hold is voided, not refunded"
        );
        let captured = simulator.capture(&call(1)).await.unwrap();
        assert_eq!(simulator.capture(&call(2)).await.unwrap(), captured);
        assert!(!simulator.ledger.held("order-1"));
        assert!(simulator.ledger.captured("order-1"));
        assert!(matches!(
            simulator.void(&call(1)).await,
            Err(ProviderError::Refused { .. })
        ));
        let refunded = simulator.refund(&call(1)).await.unwrap();
        assert_eq!(simulator.refund(&call(2)).await.unwrap(), refunded);
        assert!(!simulator.ledger.captured("order-1"));
        assert_eq!(simulator.ledger.count(Operation::Refund, "order-1"), 1);
    }

    #[tokio::test]
    async fn a_void_releases_the_hold_once_and_a_voided_hold_cannot_be_captured() {
        let simulator = Simulator::new(MemoryPayments::default(), false);
        assert_eq!(
            simulator.void(&call(1)).await.unwrap(),
            None,
            "nothing held yet"
        );
        simulator
            .authorize(&request("tok_approve", 1))
            .await
            .unwrap();
        let voided = simulator.void(&call(1)).await.unwrap();
        assert!(voided.is_some());
        assert_eq!(simulator.void(&call(2)).await.unwrap(), voided);
        assert!(!simulator.ledger.held("order-1"));
        assert!(matches!(
            simulator.capture(&call(1)).await,
            Err(ProviderError::Refused { .. })
        ));
    }

    async fn perform(
        simulator: &Simulator<MemoryPayments>,
        operation: Operation,
        attempt: u32,
    ) -> Result<Option<String>, ProviderError> {
        match operation {
            Operation::Capture => simulator.capture(&call(attempt)).await.map(Some),
            Operation::Void => simulator.void(&call(attempt)).await,
            _ => simulator.refund(&call(attempt)).await.map(Some),
        }
    }

    #[tokio::test]
    async fn a_flaky_operation_token_fails_that_operation_on_its_first_attempts() {
        for operation in [Operation::Capture, Operation::Void, Operation::Refund] {
            let simulator = Simulator::new(MemoryPayments::default(), false);
            let token = format!("tok_flaky_{}_1", operation.as_str());
            simulator.authorize(&request(&token, 1)).await.unwrap();
            if operation == Operation::Refund {
                simulator.capture(&call(1)).await.unwrap();
            }
            let first = perform(&simulator, operation, 1).await;
            assert!(matches!(first, Err(ProviderError::Transient(_))), "{token}");
            let second = perform(&simulator, operation, 2).await;
            assert!(second.unwrap().is_some(), "{token}");
        }
    }
}
