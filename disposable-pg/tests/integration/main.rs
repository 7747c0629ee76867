//! The provider's integration tests, one binary: local binaries and Docker.

mod docker;
mod provider;
