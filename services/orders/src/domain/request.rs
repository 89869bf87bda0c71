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
                Ok(line) => lines.push(line),
                Err(mut more) => violations.append(&mut more),
            }
        }
        let total = if violations.is_empty() {
            total(&lines).map_err(|e| violations.push(violation("lines", e)))
        } else {
            Err(())
        };
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
            ["lines"]
        );
    }

    #[test]
    fn card_tokens_are_checked() {
        let mut bad = request(vec![line("A", 1, 1, "EUR")]);
        bad.card_token = "4111 1111 1111 1111".into();
        assert_eq!(fields(bad.validate()), ["card_token"]);
    }
}
