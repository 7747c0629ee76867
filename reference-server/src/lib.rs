//! The reference E2EE key and message server (work in progress).
