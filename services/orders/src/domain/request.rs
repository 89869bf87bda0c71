//! What a customer asks for when placing an order, and its validation.

use kit::{
    events::OrderLine,
    money::{Currency, Money, MoneyError},
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Most lines one order may have.
pub const MAX_LINES: usize = 50;
/// Most units of one line.
pub const MAX_QUANTITY: i64 = 1_000;
/// Business caps per currency, in major units: the most one line (unit price × quantity) and one
/// order may amount to. Currencies not listed use [`DEFAULT_CAPS`].
pub const AMOUNT_CAPS: &[(&str, AmountCaps)] = &[
    ("DKK", AmountCaps::major(100_000, 500_000)),
    ("NOK", AmountCaps::major(100_000, 500_000)),
    ("SEK", AmountCaps::major(100_000, 500_000)),
    ("JPY", AmountCaps::major(1_500_000, 7_500_000)),
];
/// The caps of the other currencies (AUD, CAD, CHF, EUR, GBP, NZD, USD), in major units.
pub const DEFAULT_CAPS: AmountCaps = AmountCaps::major(10_000, 50_000);

/// The most a line and an order may amount to, in major units of their currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountCaps {
    pub line: i64,
    pub order: i64,
}

impl AmountCaps {
    pub const fn major(line: i64, order: i64) -> Self {
        AmountCaps { line, order }
    }

    /// The caps of `currency`.
    pub fn of(currency: Currency) -> Self {
        AMOUNT_CAPS
            .iter()
            .find(|(code, _)| *code == currency.code())
            .map_or(DEFAULT_CAPS, |(_, caps)| *caps)
    }

    /// `major` units of `currency` as money (saturating; the caps are far below the limit).
    fn money(major: i64, currency: Currency) -> Money {
        let scale = 10_i64.pow(currency.minor_digits());
        Money::new(major.saturating_mul(scale), currency).unwrap_or(Money::zero(currency))
    }
}

/// The body of `POST /v1/orders`, as sent. Numbers are wide so that a negative quantity is a
/// rule violation (422) rather than a parse error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub lines: Vec<LineInput>,
    pub card_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    pub sku: String,
    pub quantity: i64,
    pub unit_price: MoneyInput,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyInput {
    /// Minor units; a line's price is at least 1 (validated, documented in the schema).
    #[schemars(range(min = 1))]
    pub amount: i64,
    pub currency: String,
}

/// One broken rule, safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

fn violation(field: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        message: message.into(),
    }
}

/// A validated order request: at least one line, one currency, a total that fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub card_token: String,
}

impl PlaceOrder {
    /// Checks every rule and reports all that are broken.
    pub fn validate(self) -> Result<NewOrder, Vec<Violation>> {
        let mut violations = Vec::new();
        if self.lines.is_empty() {
            violations.push(violation("lines", "must contain at least one line"));
        }
        if self.lines.len() > MAX_LINES {
            violations.push(violation(
                "lines",
                format!("must contain at most {MAX_LINES} lines"),
            ));
        }
        let token_ok = (1..=64).contains(&self.card_token.len())
            && self
                .card_token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !token_ok {
            violations.push(violation(
                "card_token",
                "must be 1 to 64 characters of a-z, 0-9 and _",
            ));
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        for (i, line) in self.lines.into_iter().enumerate() {
            match line.validate(i) {
                Ok(line) => {
                    if let Some(problem) = above_line_cap(&line) {
                        violations.push(violation(format!("lines[{i}]"), problem));
                    }
                    lines.push(line);
                }
                Err(mut more) => violations.append(&mut more),
            }
        }
        let total = if violations.is_empty() {
            total(&lines).map_err(|e| violations.push(violation("lines", e)))
        } else {
            Err(())
        };
        if let Ok(total) = total {
            let cap = AmountCaps::money(AmountCaps::of(total.currency).order, total.currency);
            if total.amount > cap.amount {
                violations.push(violation(
                    "total",
                    format!("the order total must not exceed {cap}"),
                ));
            }
        }
        match total {
            Ok(total) if violations.is_empty() => Ok(NewOrder {
                lines,
                total,
                card_token: self.card_token,
            }),
            _ => Err(violations),
        }
    }
}

impl LineInput {
    fn validate(self, index: usize) -> Result<OrderLine, Vec<Violation>> {
        let field = |name: &str| format!("lines[{index}].{name}");
        let mut violations = Vec::new();
        let sku_ok = (1..=64).contains(&self.sku.len())
            && self
                .sku
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !sku_ok {
            violations.push(violation(
                field("sku"),
                "must be 1 to 64 characters of A-Z, 0-9, - and _",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            violations.push(violation(
                field("quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        let currency = Currency::parse(&self.unit_price.currency)
            .map_err(|e| violations.push(violation(field("unit_price.currency"), e.to_string())));
        if self.unit_price.amount <= 0 {
            violations.push(violation(
                field("unit_price.amount"),
                "must be greater than 0 (minor units)",
            ));
        }
        match currency {
            Ok(currency) if violations.is_empty() => Ok(OrderLine {
                sku: self.sku,
                quantity: u32::try_from(self.quantity).unwrap_or(0),
                unit_price: Money::new(self.unit_price.amount, currency)
                    .map_err(|e| vec![violation(field("unit_price.amount"), e.to_string())])?,
            }),
            _ => Err(violations),
        }
    }
}

/// Why `line` amounts to more than its currency's line cap, if it does.
fn above_line_cap(line: &OrderLine) -> Option<String> {
    let currency = line.unit_price.currency;
    let cap = AmountCaps::money(AmountCaps::of(currency).line, currency);
    let within = line
        .unit_price
        .checked_mul(line.quantity)
        .is_ok_and(|amount| amount.amount <= cap.amount);
    (!within).then(|| format!("the line (unit price × quantity) must not exceed {cap}"))
}

fn total(lines: &[OrderLine]) -> Result<Money, String> {
    let currency = lines[0].unit_price.currency;
    lines
        .iter()
        .try_fold(Money::zero(currency), |sum, line| {
            let amount = line.unit_price.checked_mul(line.quantity)?;
            sum.checked_add(amount)
        })
        .map_err(|e| match e {
            MoneyError::CurrencyMismatch(..) => "all lines must use the same currency".to_owned(),
            MoneyError::Overflow => "the order total is too large".to_owned(),
            other => other.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i64, amount: i64, currency: &str) -> LineInput {
        LineInput {
            sku: sku.into(),
            quantity,
            unit_price: MoneyInput {
                amount,
                currency: currency.into(),
            },
        }
    }

    fn request(lines: Vec<LineInput>) -> PlaceOrder {
        PlaceOrder {
            lines,
            card_token: "tok_approve".into(),
        }
    }

    fn fields(result: Result<NewOrder, Vec<Violation>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_valid_request_gets_its_total() {
        let order = request(vec![
            line("SKU-1", 2, 1250, "EUR"),
            line("SKU-2", 1, 99, "EUR"),
        ])
        .validate()
        .unwrap();
        assert_eq!(order.total.amount, 2599);
        assert_eq!(order.total.currency.code(), "EUR");
    }

    #[test]
    fn empty_orders_are_refused() {
        assert_eq!(fields(request(vec![]).validate()), ["lines"]);
    }

    #[test]
    fn every_broken_line_rule_is_reported() {
        let result = request(vec![
            line("bad sku", 0, -5, "XYZ"),
            line("OK", -1, 1, "EUR"),
        ])
        .validate();
        assert_eq!(
            fields(result),
            [
                "lines[0].sku",
                "lines[0].quantity",
                "lines[0].unit_price.currency",
                "lines[0].unit_price.amount",
                "lines[1].quantity",
            ]
        );
    }

    #[test]
    fn mixed_currencies_and_overflowing_totals_are_refused() {
        assert_eq!(
            fields(request(vec![line("A", 1, 1, "EUR"), line("B", 1, 1, "USD")]).validate()),
            ["lines"]
        );
        assert_eq!(
            fields(request(vec![line("A", 1000, i64::MAX / 999, "EUR")]).validate()),
            ["lines[0]"],
            "a line that overflows is above its cap"
        );
    }

    #[test]
    fn lines_and_orders_are_capped_in_their_currencys_major_units() {
        assert!(
            request(vec![line("A", 1, 1_000_000, "EUR")])
                .validate()
                .is_ok()
        );
        assert_eq!(
            fields(request(vec![line("A", 1, 1_000_001, "EUR")]).validate()),
            ["lines[0]"]
        );
        assert!(
            request(vec![line("A", 1, 1_500_000, "JPY")])
                .validate()
                .is_ok()
        );
        assert!(
            request(vec![line("A", 5, 1_000_000, "EUR"); 1])
                .validate()
                .is_err()
        );
        assert!(
            request(vec![line("A", 1, 1_000_000, "EUR"); 5])
                .validate()
                .is_ok()
        );
        assert_eq!(
            fields(request(vec![line("A", 1, 1_000_000, "EUR"); 6]).validate()),
            ["total"]
        );
    }

    #[test]
    fn card_tokens_are_checked() {
        let mut bad = request(vec![line("A", 1, 1, "EUR")]);
        bad.card_token = "4111 1111 1111 1111".into();
        assert_eq!(fields(bad.validate()), ["card_token"]);
    }
}
