//! The HushNet backend's client API (GitHub `HushNet/HushNet-Backend`, the system of seed
//! document 003), as its code at commit a859568 behaves — which differs from its
//! `docs/API.md` in routes, bodies and status codes (each struct in [`wire`] says how).
//!
//! Protocol, in the order a conversation uses it:
//!
//! 1. `POST /users/create` → user id and a single-use enrollment token ([`client`]).
//! 2. `POST /users/{id}/devices` with the token, identity key, signed prekey and one-time
//!    prekeys ([`keys::registration`]; encodings in [`codec`]). Unauthenticated.
//! 3. Every later call of the device is signed: Ed25519 over the Unix timestamp ([`auth`]).
//! 4. `GET /users/{id}/keys` → bundles with every one-time prekey, none consumed
//!    ([`keys::prekey_bundle`] takes the first, as HushNet's client does).
//! 5. X3DH through `POST /sessions` (the first ratchet message sealed inside,
//!    [`keys::session_init`]); the recipient hears `pending_session` on its user's
//!    WebSocket ([`events`]), fetches `GET /sessions/pending`, answers with
//!    `POST /sessions/confirm`, which creates the users' chat.
//! 6. `POST /messages` needs that chat's id (`GET /chats`), one payload per device with a
//!    ratchet header as JSON; recipients hear `message` and fetch `GET /messages/pending`,
//!    which marks what it returns delivered (no ack).
//!
//! What it lacks, for the capability list of the server-API layer: no one-time prekey
//! upload, count or replenish; no signed-prekey rotation; no device removal; no ack; no
//! device-list check on send (no mismatch reply); no session towards one's own other
//! devices (`400 Cannot create session with self`); push is per user, unauthenticated, and
//! notify-then-fetch; a second device for a user needs a second enrollment token, which only
//! user creation hands out. docs/targets.md says how to run it beside the harness.

pub mod auth;
pub mod client;
pub mod codec;
pub mod error;
pub mod events;
pub mod keys;
#[cfg(test)]
mod live;
pub mod wire;

pub use client::HushnetClient;
pub use error::HushnetError;
