//! The idshare HTTP server: the Persona-compatible JSON:API, its conventions (authentication,
//! idempotency, rate limits, inflection, pagination), and the wiring that serves it.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod flow;
pub mod idempotency;
pub mod jsonapi;
pub mod middleware;
pub mod openapi;
pub mod query;
pub mod ratelimit;
pub mod web;
