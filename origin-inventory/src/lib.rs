//! `origin-inventory`: where seats and money change hands.
//!
//! Organizers describe venues and events; buyers browse the catalog and
//! take seats through compare-and-swap holds on per-seat inventory rows.
//! The binary (`main.rs`) only reads configuration and calls
//! [`app::Application`]; tests build the same application on port 0.

pub mod access;
pub mod api;
pub mod app;
pub mod auth;
pub mod batches;
pub mod beginning;
pub mod booking;
pub mod buyers;
pub mod catalog;
pub mod checkout;
pub mod config;
pub mod demo;
pub mod display;
pub mod email;
pub mod error;
pub mod events;
pub mod frontiers;
pub mod holds;
pub mod ids;
pub mod invariants;
#[cfg(test)]
mod layering;
pub mod live;
pub mod mailer;
pub mod metrics;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod purge;
pub mod qr;
pub mod reservations;
pub mod sales;
pub mod settlement;
pub mod signatures;
pub mod state;
pub mod sweeper;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod text;
pub mod tickets;
pub mod venues;
pub mod warm;
pub mod workers;
