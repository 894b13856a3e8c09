//! What the handlers share. Each handler takes the parts it uses
//! (`State<PgPool>`, `State<Payments>`, …) through axum's `FromRef`, so no
//! handler depends on the whole, and this module depends on no handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::FromRef;
use secrecy::ExposeSecret as _;
use sqlx::PgPool;

use crate::access::AccessKeys;
use crate::beginning::{Beginning, Beginnings};
use crate::booking::{Booking, Bookings};
use crate::buyers::BuyerSessions;
use crate::config::{ProviderSettings, Settings};
use crate::live::SeatChanges;
use crate::metrics::Metrics;
use crate::payments::{PaymentProvider, Payments, SandboxProvider, StripeProvider, open_ledger};
use crate::purge::CatalogPurge;
use crate::reservations::KnownLimits;
use crate::warm::WarmPool;

/// Shared by every handler.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    /// The same pool, whose order path keeps its connections warm.
    pub warm: WarmPool,
    pub payments: Payments,
    pub metrics: Arc<Metrics>,
    /// Checks the edge's access tokens.
    pub access: AccessKeys,
    pub purge: CatalogPurge,
    pub seat_changes: SeatChanges,
    pub hold_limits: KnownLimits,
    /// Issues and checks buyer sessions.
    pub buyers: BuyerSessions,
    pub draining: Draining,
}

/// Set when shutdown begins: readiness fails first, so load balancers stop
/// sending before the listener closes.
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl AppState {
    pub async fn new(settings: &Settings, db: PgPool) -> anyhow::Result<Self> {
        let provider: Arc<dyn PaymentProvider> = match &settings.provider {
            ProviderSettings::Sandbox { faults, ledger_url } => {
                Arc::new(SandboxProvider::new(open_ledger(ledger_url.as_ref(), &db).await?, *faults))
            }
            ProviderSettings::Stripe { api_base, secret_key } => {
                Arc::new(StripeProvider::new(api_base.clone(), secret_key.clone(), Duration::from_secs(20)))
            }
        };
        let warm = WarmPool::new(db.clone());
        let payments = Payments {
            provider,
            beginnings: Beginnings::start(warm.clone(), Beginning),
            bookings: Bookings::start(warm.clone(), Booking),
            ticket_secret: settings.ticket_secret.expose_secret().as_bytes().into(),
            webhook_secret: settings.webhook_secret.expose_secret().as_bytes().into(),
        };
        Ok(Self {
            warm,
            db,
            payments,
            metrics: Arc::default(),
            access: AccessKeys::new(settings.access.clone()),
            purge: CatalogPurge::new(settings.edge_cache.clone()),
            seat_changes: SeatChanges::default(),
            hold_limits: KnownLimits::default(),
            buyers: BuyerSessions::new(settings.buyer_session_secret.expose_secret().as_bytes()),
            draining: Draining::default(),
        })
    }
}
