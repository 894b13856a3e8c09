//! `origin-inventory`: where seats and money change hands.
//!
//! Organizers describe venues and events; buyers browse the catalog and
//! take seats through compare-and-swap holds on per-seat inventory rows.
//! The binary (`main.rs`) only reads configuration and calls
//! [`app::Application`]; tests build the same application on port 0.

pub mod access;
pub mod app;
pub mod auth;
pub mod buyers;
pub mod catalog;
pub mod checkout;
pub mod config;
pub mod demo;
pub mod email;
pub mod error;
pub mod events;
pub mod health;
pub mod holds;
pub mod invariants;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod pages;
pub mod payments;
pub mod purge;
pub mod reservations;
pub mod sales;
pub mod signatures;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod text;
pub mod tickets;
pub mod venues;
pub mod webhooks;
pub mod workers;
