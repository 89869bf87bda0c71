//! Money as integer minor units plus an ISO 4217 currency: never floats.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Currencies the shop accepts, with their number of minor-unit digits.
const CURRENCIES: &[(&str, u32)] = &[
    ("AUD", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("JPY", 0),
    ("NOK", 2),
    ("NZD", 2),
    ("SEK", 2),
    ("USD", 2),
];

/// An ISO 4217 currency code the shop accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let codes: Vec<&str> = CURRENCIES.iter().map(|(code, _)| *code).collect();
        schemars::json_schema!({
            "description": "ISO 4217 currency code",
            "type": "string",
            "enum": codes,
        })
    }
}

impl Currency {
    /// Parses an upper-case ISO 4217 code the shop accepts.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(known, _)| Currency(known))
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(8).collect()))
    }

    /// The ISO code, e.g. `EUR`.
    pub fn code(self) -> &'static str {
        self.0
    }

    /// Digits after the decimal point in this currency (2 for EUR, 0 for JPY).
    pub fn minor_digits(self) -> u32 {
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == self.0)
            .map_or(2, |(_, digits)| *digits)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// An amount of money in minor units (cents) of a currency.
// Deserialising checks what `Money::new` checks, so a negative amount never gets in through
// JSON either (the doc comment above is the JSON Schema's description: keep it as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Amount in minor units (e.g. cents); never negative.
    #[schemars(range(min = 0))]
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: Currency,
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Unchecked {
            amount: i64,
            currency: Currency,
        }
        let raw = Unchecked::deserialize(deserializer)?;
        Money::new(raw.amount, raw.currency).map_err(serde::de::Error::custom)
    }
}

/// Why an amount of money is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency `{0}`")]
    UnknownCurrency(String),
    #[error("amount must not be negative")]
    Negative,
    #[error("amount overflows")]
    Overflow,
    #[error("cannot mix currencies {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

impl Money {
    /// A non-negative amount in minor units.
    pub fn new(amount: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Money { amount, currency })
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: 0,
            currency,
        }
    }

    /// `self + other`, refusing mixed currencies and overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::new(amount, self.currency)
    }

    /// `self × quantity`, refusing overflow.
    pub fn checked_mul(self, quantity: u32) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Money::new(amount, self.currency)
    }
}

impl fmt::Display for Money {
    /// `12.50 EUR`, `1250 JPY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        if digits == 0 {
            return write!(f, "{} {}", self.amount, self.currency);
        }
        let scale = 10_i64.pow(digits);
        write!(
            f,
            "{}.{:0width$} {}",
            self.amount / scale,
            self.amount % scale,
            self.currency,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").unwrap()).unwrap()
    }

    #[test]
    fn unknown_and_lower_case_currencies_are_rejected() {
        assert_eq!(
            Currency::parse("XYZ"),
            Err(MoneyError::UnknownCurrency("XYZ".into()))
        );
        assert!(Currency::parse("eur").is_err());
    }

    #[test]
    fn negative_amounts_are_rejected() {
        assert_eq!(
            Money::new(-1, Currency::parse("USD").unwrap()),
            Err(MoneyError::Negative)
        );
    }

    #[test]
    fn addition_refuses_mixed_currencies_and_overflow() {
        let usd = Money::new(1, Currency::parse("USD").unwrap()).unwrap();
        assert!(matches!(
            eur(1).checked_add(usd),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
        assert_eq!(eur(2).checked_add(eur(3)), Ok(eur(5)));
    }

    #[test]
    fn multiplication_refuses_overflow() {
        assert_eq!(eur(i64::MAX / 2).checked_mul(3), Err(MoneyError::Overflow));
        assert_eq!(eur(250).checked_mul(4), Ok(eur(1000)));
    }

    #[test]
    fn display_uses_the_currency_minor_digits() {
        assert_eq!(eur(1205).to_string(), "12.05 EUR");
        let jpy = Money::new(1500, Currency::parse("JPY").unwrap()).unwrap();
        assert_eq!(jpy.to_string(), "1500 JPY");
    }

    #[test]
    fn json_round_trip_validates_the_currency() {
        let money: Money = serde_json::from_str(r#"{"amount":100,"currency":"GBP"}"#).unwrap();
        assert_eq!(money.currency.code(), "GBP");
        assert!(serde_json::from_str::<Money>(r#"{"amount":100,"currency":"ABC"}"#).is_err());
    }

    #[test]
    fn a_negative_amount_is_refused_when_deserialised() {
        let error = serde_json::from_str::<Money>(r#"{"amount":-1,"currency":"EUR"}"#)
            .expect_err("a negative amount must not deserialise");
        assert!(error.to_string().contains("negative"), "{error}");
        assert!(
            serde_json::from_str::<Money>(r#"{"amount":1,"currency":"EUR","x":1}"#).is_err(),
            "unknown fields are still refused"
        );
        assert_eq!(
            serde_json::from_str::<Money>(r#"{"amount":0,"currency":"EUR"}"#).unwrap(),
            eur(0)
        );
    }
}
