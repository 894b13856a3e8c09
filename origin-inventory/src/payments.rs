//! Payment providers. A charge carries our idempotency key to the provider,
//! so asking again after a crash or a timeout returns the first answer
//! instead of charging twice: that is what makes reconciliation safe.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;

use crate::beginning::Beginnings;
use crate::booking::Bookings;
use crate::warm::WarmPool;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// Ours, unique per payment attempt; the provider deduplicates on it.
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_method: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChargeOutcome {
    Succeeded { provider_payment_id: String },
    Declined { code: String, message: String },
}

/// The provider could not give an answer; the charge may or may not exist.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    #[error("payment provider timed out")]
    Timeout,
}

pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;
    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeOutcome, ProviderError>>;
    fn refund<'a>(
        &'a self,
        provider_payment_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// What the checkout needs besides the database.
#[derive(Clone)]
pub struct Payments {
    pub provider: Arc<dyn PaymentProvider>,
    /// Begins the payments of commit requests, several per transaction.
    pub beginnings: Beginnings,
    /// Writes the orders of successful charges, several per transaction.
    pub bookings: Bookings,
    pub ticket_secret: Arc<[u8]>,
    /// Checks the provider's webhook signatures.
    pub webhook_secret: Arc<[u8]>,
}

/// How the sandbox misbehaves, for failure tests and load tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxFaults {
    pub latency: Duration,
    /// Share of charges refused before they reach the ledger.
    pub failure_rate: f64,
    /// Share of charges recorded whose answer is then lost.
    pub timeout_rate: f64,
}

/// A test card of the sandbox, named as Stripe's test payment methods are.
pub struct TestCard {
    pub id: &'static str,
    pub label: &'static str,
    /// The decline code, for a card that declines.
    pub declines: Option<&'static str>,
}

/// The sandbox's cards: the one list the checkout page offers and README
/// names (a test keeps README in step).
pub const TEST_CARDS: &[TestCard] = &[
    TestCard { id: "pm_card_visa", label: "Visa — succeeds", declines: None },
    TestCard { id: "pm_card_mastercard", label: "Mastercard — succeeds", declines: None },
    TestCard { id: "pm_card_amex", label: "American Express — succeeds", declines: None },
    TestCard { id: "pm_card_chargeDeclined", label: "Declined card", declines: Some("card_declined") },
    TestCard {
        id: "pm_card_chargeDeclinedInsufficientFunds",
        label: "Declined — insufficient funds",
        declines: Some("insufficient_funds"),
    },
    TestCard {
        id: "pm_card_chargeDeclinedExpiredCard",
        label: "Declined — expired card",
        declines: Some("expired_card"),
    },
];

/// A provider following Stripe's test conventions, with its own ledger
/// (`sandbox_charges`) so a charge outlives a crash of the origin. The
/// ledger stands for another company's database: best in a database of its
/// own (`STAMPEDE_SANDBOX_DATABASE_URL`, see [`open_ledger`]), so its
/// transactions are not counted as ours, and in an unlogged table, so it
/// stays out of our WAL (a crash of Postgres itself empties it, and the
/// reconciler's second ask then charges anew, once). Its cards are
/// [`TEST_CARDS`]; any other payment method is refused.
pub struct SandboxProvider {
    /// The ledger: its charges keep their connections warm, as the order path does.
    db: WarmPool,
    faults: SandboxFaults,
}

impl SandboxProvider {
    pub fn new(db: PgPool, faults: SandboxFaults) -> Self {
        Self { db: WarmPool::new(db), faults }
    }

    fn outcome_for(payment_method: &str) -> (&'static str, Option<&'static str>) {
        match TEST_CARDS.iter().find(|card| card.id == payment_method) {
            Some(TestCard { declines: None, .. }) => ("succeeded", None),
            Some(TestCard { declines: Some(code), .. }) => ("declined", Some(code)),
            None => ("declined", Some("invalid_payment_method")),
        }
    }

    fn roll(rate: f64) -> bool {
        rate > 0.0 && rand::rng().random_bool(rate.min(1.0))
    }
}

/// The ledger's table in a database of its own. The origin's database has
/// the same table from its migrations (0002, unlogged since 0007); a test
/// keeps the two alike.
const LEDGER_TABLE: &str = "
    CREATE UNLOGGED TABLE IF NOT EXISTS sandbox_charges (
        id              text PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        payment_method  text NOT NULL,
        amount_cents    bigint NOT NULL,
        currency        text NOT NULL,
        outcome         text NOT NULL CHECK (outcome IN ('succeeded', 'declined')),
        decline_code    text,
        refunded        boolean NOT NULL DEFAULT false,
        created_at      timestamptz NOT NULL DEFAULT now()
    )";

/// The sandbox's ledger: the database at `url`, its table made on first
/// use, or the origin's own database `db` when no URL is given.
pub async fn open_ledger(url: Option<&SecretString>, db: &PgPool) -> anyhow::Result<PgPool> {
    let Some(url) = url else { return Ok(db.clone()) };
    // The same size and waits as the origin's own pool.
    let ledger = db
        .options()
        .clone()
        .connect(url.expose_secret())
        .await
        .context("STAMPEDE_SANDBOX_DATABASE_URL: the sandbox's ledger database")?;
    // Origins starting together take turns: two `IF NOT EXISTS` at once can
    // both try to create it. One implicit transaction holds the lock.
    sqlx::raw_sql(&format!("SELECT pg_advisory_xact_lock(hashtext('sandbox_charges'));{LEDGER_TABLE}"))
        .execute(&ledger)
        .await
        .context("creating the sandbox's ledger")?;
    Ok(ledger)
}

fn decline_message(code: &str) -> String {
    match code {
        "card_declined" => "Your card was declined.",
        "insufficient_funds" => "Your card has insufficient funds.",
        "expired_card" => "Your card has expired.",
        _ => "This payment method cannot be used.",
    }
    .to_owned()
}

impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeOutcome, ProviderError>> {
        Box::pin(async move {
            tokio::time::sleep(self.faults.latency).await;
            if Self::roll(self.faults.failure_rate) {
                return Err(ProviderError::Unavailable("sandbox: simulated outage".into()));
            }
            let (outcome, code) = Self::outcome_for(&request.payment_method);
            let id = format!("pi_sandbox_{}", crate::ids::time_ordered().simple());
            let unavailable = |e: sqlx::Error| ProviderError::Unavailable(e.to_string());
            // The ledger keeps the first answer per key, as Stripe does. One
            // statement; a key racing itself may need a second look.
            let mut connection = self.db.acquire().await.map_err(unavailable)?;
            let recorded = sqlx::query!(
                r#"WITH recorded AS (
                     INSERT INTO sandbox_charges (id, idempotency_key, payment_method, amount_cents, currency, outcome, decline_code)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING
                     RETURNING id, outcome, decline_code)
                 SELECT id AS "id!", outcome AS "outcome!", decline_code FROM recorded
                 UNION ALL
                 SELECT id, outcome, decline_code FROM sandbox_charges
                 WHERE idempotency_key = $2 AND NOT EXISTS (SELECT 1 FROM recorded)"#,
                id,
                request.idempotency_key,
                request.payment_method,
                request.amount_cents,
                request.currency,
                outcome,
                code,
            )
            .fetch_optional(&mut *connection)
            .await;
            connection.keep_if_answered(&recorded);
            let (id, outcome, code) = match recorded.map_err(unavailable)? {
                Some(charge) => (charge.id, charge.outcome, charge.decline_code),
                None => {
                    let charge = sqlx::query!(
                        "SELECT id, outcome, decline_code FROM sandbox_charges WHERE idempotency_key = $1",
                        request.idempotency_key,
                    )
                    .fetch_one(&*self.db)
                    .await
                    .map_err(unavailable)?;
                    (charge.id, charge.outcome, charge.decline_code)
                }
            };
            if Self::roll(self.faults.timeout_rate) {
                return Err(ProviderError::Timeout);
            }
            Ok(match (outcome.as_str(), code) {
                ("succeeded", _) => ChargeOutcome::Succeeded { provider_payment_id: id },
                (_, code) => {
                    let code = code.unwrap_or_else(|| "card_declined".into());
                    ChargeOutcome::Declined { message: decline_message(&code), code }
                }
            })
        })
    }

    fn refund<'a>(
        &'a self,
        provider_payment_id: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE sandbox_charges SET refunded = true WHERE id = $1 AND outcome = 'succeeded'",
                provider_payment_id,
            )
            .execute(&*self.db)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
            Ok(())
        })
    }
}

/// The Stripe API version every request names, so the shapes read here
/// (PaymentIntent, refund, `last_payment_error`) do not change with the
/// account's default version.
pub const STRIPE_API_VERSION: &str = "2024-06-20";

/// Stripe over its REST API: PaymentIntents confirmed at once, with
/// Stripe's own `Idempotency-Key` header.
pub struct StripeProvider {
    client: reqwest::Client,
    api_base: String,
    secret_key: SecretString,
}

impl StripeProvider {
    pub fn new(api_base: String, secret_key: SecretString, timeout: Duration) -> Self {
        let client =
            reqwest::Client::builder().timeout(timeout).build().expect("static client configuration");
        Self { client, api_base, secret_key }
    }

    async fn post(
        &self,
        path: &str,
        key: &str,
        form: &[(&str, String)],
    ) -> Result<(u16, serde_json::Value), ProviderError> {
        let response = self
            .client
            .post(format!("{}{path}", self.api_base))
            .basic_auth(self.secret_key.expose_secret(), Some(""))
            .header("Idempotency-Key", key)
            .header("Stripe-Version", STRIPE_API_VERSION)
            .form(form)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ProviderError::Timeout
                } else {
                    ProviderError::Unavailable(e.to_string())
                }
            })?;
        let status = response.status().as_u16();
        let body = response.json().await.map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok((status, body))
    }
}

impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<ChargeOutcome, ProviderError>> {
        Box::pin(async move {
            let form = [
                ("amount", request.amount_cents.to_string()),
                ("currency", request.currency.to_lowercase()),
                ("payment_method", request.payment_method.clone()),
                ("confirm", "true".into()),
                ("description", request.description.clone()),
                // Lets webhooks name the payment they are about.
                ("metadata[payment_id]", request.idempotency_key.clone()),
                ("automatic_payment_methods[enabled]", "true".into()),
                ("automatic_payment_methods[allow_redirects]", "never".into()),
            ];
            let (status, body) = self.post("/v1/payment_intents", &request.idempotency_key, &form).await?;
            match status {
                200 if body["status"] == "succeeded" => Ok(ChargeOutcome::Succeeded {
                    provider_payment_id: body["id"].as_str().unwrap_or_default().to_owned(),
                }),
                200 => Err(ProviderError::Unavailable(format!("payment intent is {}", body["status"]))),
                402 | 400 if body["error"].is_object() => {
                    let error = &body["error"];
                    let code =
                        error["decline_code"].as_str().or(error["code"].as_str()).unwrap_or("card_declined");
                    Ok(ChargeOutcome::Declined {
                        code: code.to_owned(),
                        message: error["message"].as_str().unwrap_or("The payment was declined.").to_owned(),
                    })
                }
                _ => Err(ProviderError::Unavailable(format!("stripe answered {status}"))),
            }
        })
    }

    fn refund<'a>(
        &'a self,
        provider_payment_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let (status, body) =
                self.post("/v1/refunds", key, &[("payment_intent", provider_payment_id.to_owned())]).await?;
            match status {
                200 => Ok(()),
                _ => Err(ProviderError::Unavailable(format!("stripe refund answered {status}: {body}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_names_exactly_the_sandbox_cards() {
        let readme = include_str!("../../README.md");
        let sentence = readme.split("test cards (").nth(1).and_then(|s| s.split(" decline.").next()).unwrap();
        let (succeed, decline) = sentence.split_once(" succeed;").unwrap();
        let named = |text: &str| text.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>();
        let cards = |declining: bool| {
            TEST_CARDS
                .iter()
                .filter(|c| c.declines.is_some() == declining)
                .map(|c| c.id.to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(named(succeed), cards(false));
        assert_eq!(named(decline), cards(true));
    }

    #[test]
    fn test_cards_answer_as_listed_and_others_are_refused() {
        for card in TEST_CARDS {
            let expected = if card.declines.is_some() { "declined" } else { "succeeded" };
            assert_eq!(SandboxProvider::outcome_for(card.id), (expected, card.declines), "{}", card.id);
        }
        assert_eq!(
            SandboxProvider::outcome_for("pm_card_unknown"),
            ("declined", Some("invalid_payment_method"))
        );
    }
}
