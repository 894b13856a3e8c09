//! End-to-end tests live in `tests/`; run them with `cargo xtask test`,
//! which builds the components and binaries and provides the servers.
