//! Black-box tests of the origin over HTTP against a real Postgres: each
//! test gets a fresh database and its own server on port 0.
//! Run with `cargo xtask test` (it provides `STAMPEDE_TEST_DATABASE_URL`).

mod access;
mod beginning;
mod booking;
mod catalog;
mod checkout;
mod crowds;
mod faults;
mod helpers;
mod holds;
mod invariants;
mod live;
mod migrations;
mod notifications;
mod organizer;
mod pages;
mod security;
mod stripe;
mod warm;
