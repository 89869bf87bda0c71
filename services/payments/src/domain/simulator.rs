//! The rules of the built-in payment simulator: the card token decides the outcome, so every
//! path of the saga can be driven from a test or a curl. Documented in the service README.
//!
//! | token                 | outcome                                                       |
//! |-----------------------|---------------------------------------------------------------|
//! | `tok_approve`         | approved                                                      |
//! | `tok_decline_<reason>`| declined with `<reason>`                                      |
//! | `tok_flaky_<N>`       | fails transiently on delivery attempts 1..=N, then approved   |
//! | `tok_unavailable`     | fails transiently on every attempt, unless the simulator is recovered |
//! | anything else         | declined with `unknown_card_token`                            |

/// A card token, as the simulator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardToken {
    Approve,
    Decline { reason: String },
    Flaky { failures: u32 },
    Unavailable,
    Unknown,
}

/// What the simulator does with one charge attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline {
        reason: String,
    },
    /// The provider cannot answer now; the same charge may succeed later.
    FailTransiently {
        why: &'static str,
    },
}

/// The decline reason of a token the simulator does not know.
pub const UNKNOWN_TOKEN_REASON: &str = "unknown_card_token";

impl CardToken {
    pub fn parse(raw: &str) -> CardToken {
        if raw == "tok_approve" {
            CardToken::Approve
        } else if raw == "tok_unavailable" {
            CardToken::Unavailable
        } else if let Some(reason) = raw.strip_prefix("tok_decline_") {
            CardToken::Decline {
                reason: if reason.is_empty() {
                    "declined".to_owned()
                } else {
                    reason.to_owned()
                },
            }
        } else if let Some(failures) = raw.strip_prefix("tok_flaky_").and_then(|n| n.parse().ok()) {
            CardToken::Flaky { failures }
        } else {
            CardToken::Unknown
        }
    }

    /// The outcome of delivery `attempt` (1 on the first delivery); `recovered` is the
    /// simulator setting that brings `tok_unavailable` back.
    pub fn decide(&self, attempt: u32, recovered: bool) -> Decision {
        match self {
            CardToken::Approve => Decision::Approve,
            CardToken::Decline { reason } => Decision::Decline {
                reason: reason.clone(),
            },
            CardToken::Flaky { failures } if attempt <= *failures => Decision::FailTransiently {
                why: "flaky card token: this attempt fails",
            },
            CardToken::Flaky { .. } => Decision::Approve,
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
        CardToken::parse(token).decide(attempt, recovered)
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
        for token in ["tok_visa", "tok_flaky_x", "4111111111111111", ""] {
            assert_eq!(
                decide(token, 1, false),
                declined(UNKNOWN_TOKEN_REASON),
                "{token}"
            );
        }
    }
}
