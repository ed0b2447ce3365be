//! The idshare HTTP server: the Persona-compatible JSON:API, its conventions (authentication,
//! idempotency, rate limits, inflection, pagination) in `http/`, the dashboard and the hosted
//! flow, and the wiring that serves them. The use cases are in `idshare_service`.

pub mod api;
pub mod app;
pub mod config;
pub mod dashboard;
pub mod flow;
pub mod http;
pub mod metrics;
pub mod state;
pub mod web;
