//! The integration suite: one binary (link once), each test against the real HTTP server on
//! port 0, on a fresh SQLite file and on a fresh PostgreSQL database.

#[macro_use]
mod helpers;

mod at_rest;
mod audit;
mod bench;
mod browser;
mod chrome;
mod cli;
mod confirmations;
mod connect_e2e;
mod connections;
mod conventions;
mod dashboard;
mod dashboard_actions;
mod dashboard_review;
mod dashboard_settings;
mod events;
mod flow;
mod idempotency;
mod inquiries;
mod jobs;
mod key_rotation;
mod observability;
mod openapi;
mod people;
mod persona_conformance;
mod pipeline;
mod preview;
mod redemption;
mod resilience;
mod retention;
mod share_tokens;
mod sign_in;
mod store_counters;
mod templates;
mod tenancy;
mod webhooks;
mod workflows;
