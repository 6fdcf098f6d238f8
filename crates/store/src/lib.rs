//! The shared SeaORM persistence layer of partner-center: connection setup, migrations, entities
//! and the queries every service runs.
//!
//! Query functions take `&impl ConnectionTrait`, so a handler opens one transaction, passes it to
//! every query it needs, and commits once: nothing is ever half-written.

pub mod audit;
pub mod customers;
pub mod db;
pub mod entity;
pub mod enums;
pub mod migration;
pub mod partners;
pub mod relationships;

pub use db::{Database, connect};
pub use migration::Migrator;
pub use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
