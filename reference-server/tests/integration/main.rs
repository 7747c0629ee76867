//! The reference server's integration tests, one binary with a module per area: each starts
//! the server in-process on a disposable PostgreSQL.

mod accounts;
mod common;
mod keys;
mod messages;
mod migrations;
mod operations;
mod websocket;
