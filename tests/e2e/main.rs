//! End-to-end tests: each starts the real server stack on a random port over its own fresh
//! database (SQLite, or PostgreSQL when `PC_TEST_POSTGRES_URL` is set) and calls it over gRPC.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod admin_relationships;
mod auth;
mod authorization;
mod balancing;
mod changes;
mod customer_relationships;
mod customers;
mod delegated_access;
mod events;
mod expiry;
mod hostile_input;
mod identity;
mod metrics;
mod overload;
mod partners;
mod plumbing;
mod point_reads;
mod races;
mod read_replica;
mod relay;
mod reliability;
mod replicas;
mod reseller_links;
mod scenarios;
mod subscriptions;
mod support_assignments;
mod transfers;
