//! The rules of the built-in payment simulator: the card token decides the outcome of every
//! provider operation, so every path of the saga can be driven from a test or a curl.
//! Documented in docs/payments.md.
//!
//! | token                     | outcome                                                           |
//! |---------------------------|-------------------------------------------------------------------|
//! | `tok_approve`             | authorized; capture, void and refund succeed                      |
//! | `tok_decline_<reason>`    | declined with `<reason>`                                          |
//! | `tok_flaky_<N>`           | authorize fails transiently on delivery attempts 1..=N, then approved |
//! | `tok_flaky_capture_<N>`   | authorized; capture fails transiently on attempts 1..=N           |
//! | `tok_flaky_void_<N>`      | authorized; void fails transiently on attempts 1..=N              |
//! | `tok_flaky_refund_<N>`    | authorized; refund fails transiently on attempts 1..=N            |
//! | `tok_unavailable`         | authorize fails transiently on every attempt, unless recovered    |
//! | anything else             | declined with `unknown_card_token`                                |

use serde::{Deserialize, Serialize};

/// A provider operation. Every one is idempotent per key (the order id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    /// Authorize (hold) the amount: `CHARGE` in the ledger.
    Charge,
    /// Take the held amount.
    Capture,
    /// Release the hold before capture.
    Void,
    /// Give back a captured amount.
    Refund,
}

impl Operation {
    /// The name in tokens and ledger keys, e.g. `capture`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Charge => "charge",
            Operation::Capture => "capture",
            Operation::Void => "void",
            Operation::Refund => "refund",
        }
    }
}

/// A card token, as the simulator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardToken {
    Approve,
    Decline {
        reason: String,
    },
    /// `operation` fails transiently on its first `failures` attempts; everything else succeeds.
    Flaky {
        operation: Operation,
        failures: u32,
    },
    Unavailable,
    Unknown,
}

/// What the simulator does with one attempt of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline {
        reason: String,
    },
    /// The provider cannot answer now; the same operation may succeed later.
    FailTransiently {
        why: &'static str,
    },
}

/// The decline reason of a token the simulator does not know.
pub const UNKNOWN_TOKEN_REASON: &str = "unknown_card_token";

impl CardToken {
    pub fn parse(raw: &str) -> CardToken {
        if raw == "tok_approve" {
            return CardToken::Approve;
        }
        if raw == "tok_unavailable" {
            return CardToken::Unavailable;
        }
        if let Some(reason) = raw.strip_prefix("tok_decline_") {
            let reason = if reason.is_empty() {
                "declined"
            } else {
                reason
            };
            return CardToken::Decline {
                reason: reason.to_owned(),
            };
        }
        let Some(rest) = raw.strip_prefix("tok_flaky_") else {
            return CardToken::Unknown;
        };
        let (operation, count) = [Operation::Capture, Operation::Void, Operation::Refund]
            .into_iter()
            .find_map(|op| {
                rest.strip_prefix(op.as_str())
                    .and_then(|r| r.strip_prefix('_'))
                    .map(|count| (op, count))
            })
            .unwrap_or((Operation::Charge, rest));
        match count.parse() {
            Ok(failures) => CardToken::Flaky {
                operation,
                failures,
            },
            Err(_) => CardToken::Unknown,
        }
    }

    /// The outcome of delivery `attempt` (1 on the first delivery) of `operation`;
    /// `recovered` is the simulator setting that brings `tok_unavailable` back. Only a charge
    /// can be declined.
    pub fn decide(&self, operation: Operation, attempt: u32, recovered: bool) -> Decision {
        match self {
            CardToken::Flaky {
                operation: flaky,
                failures,
            } if *flaky == operation && attempt <= *failures => Decision::FailTransiently {
                why: "flaky card token: this attempt fails",
            },
            _ if operation != Operation::Charge => Decision::Approve,
            CardToken::Approve | CardToken::Flaky { .. } => Decision::Approve,
            CardToken::Decline { reason } => Decision::Decline {
                reason: reason.clone(),
            },
            CardToken::Unavailable if recovered => Decision::Approve,
            CardToken::Unavailable => Decision::FailTransiently {
                why: "the provider is unavailable",
            },
            CardToken::Unknown => Decision::Decline {
                reason: UNKNOWN_TOKEN_REASON.to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(token: &str, attempt: u32, recovered: bool) -> Decision {
        CardToken::parse(token).decide(Operation::Charge, attempt, recovered)
    }

    fn declined(reason: &str) -> Decision {
        Decision::Decline {
            reason: reason.into(),
        }
    }

    #[test]
    fn tok_approve_is_always_approved() {
        for attempt in 1..5 {
            assert_eq!(decide("tok_approve", attempt, false), Decision::Approve);
        }
    }

    #[test]
    fn tok_decline_is_declined_with_the_reason_in_the_token() {
        assert_eq!(
            decide("tok_decline_insufficient_funds", 1, false),
            declined("insufficient_funds")
        );
        assert_eq!(
            decide("tok_decline_insufficient_funds", 3, true),
            declined("insufficient_funds")
        );
        assert_eq!(decide("tok_decline_", 1, false), declined("declined"));
    }

    #[test]
    fn tok_flaky_fails_its_first_n_attempts_then_approves() {
        assert!(matches!(
            decide("tok_flaky_2", 1, false),
            Decision::FailTransiently { .. }
        ));
        assert!(matches!(
            decide("tok_flaky_2", 2, false),
            Decision::FailTransiently { .. }
        ));
        assert_eq!(decide("tok_flaky_2", 3, false), Decision::Approve);
        assert_eq!(decide("tok_flaky_0", 1, false), Decision::Approve);
    }

    #[test]
    fn a_flaky_operation_token_fails_only_that_operation() {
        for operation in [Operation::Capture, Operation::Void, Operation::Refund] {
            let token = CardToken::parse(&format!("tok_flaky_{}_2", operation.as_str()));
            assert_eq!(token.decide(Operation::Charge, 1, false), Decision::Approve);
            for attempt in [1, 2] {
                assert!(matches!(
                    token.decide(operation, attempt, false),
                    Decision::FailTransiently { .. }
                ));
            }
            assert_eq!(token.decide(operation, 3, false), Decision::Approve);
            for other in [Operation::Capture, Operation::Void, Operation::Refund] {
                if other != operation {
                    assert_eq!(token.decide(other, 1, false), Decision::Approve);
                }
            }
        }
    }

    #[test]
    fn tok_unavailable_fails_until_the_simulator_is_recovered() {
        for attempt in [1, 5, 1000] {
            assert!(matches!(
                decide("tok_unavailable", attempt, false),
                Decision::FailTransiently { .. }
            ));
        }
        assert_eq!(decide("tok_unavailable", 1, true), Decision::Approve);
    }

    #[test]
    fn unknown_tokens_are_declined_not_retried() {
        for token in [
            "tok_visa",
            "tok_flaky_x",
            "tok_flaky_capture_x",
            "4111111111111111",
            "",
        ] {
            assert_eq!(
                decide(token, 1, false),
                declined(UNKNOWN_TOKEN_REASON),
                "{token}"
            );
        }
    }
}
