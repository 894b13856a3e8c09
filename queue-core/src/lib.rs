//! The waiting room's rules, free of I/O so they are tested with simulated
//! time: who may enter when ([`admission`]), in what order ([`shuffle`]),
//! what a visitor is told ([`status`], [`page`]), how a bot is slowed down
//! ([`pow`]), where the shared state lives ([`keys`]) and the atomic steps
//! that change it ([`scripts`]).

pub mod admission;
pub mod keys;
pub mod page;
pub mod pow;
pub mod scripts;
pub mod settings;
pub mod shuffle;
pub mod status;
