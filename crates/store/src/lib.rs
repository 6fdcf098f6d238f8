//! The shared SeaORM persistence layer of partner-center: connection setup, migrations, and one
//! module per table, holding its SeaORM entity and the queries every service runs on it. Enum
//! columns hold the domain's enums, stored by name (`GLOBAL`, `ACTIVE`), so the tables read
//! naturally in SQL.
//!
//! Query functions take `&impl ConnectionTrait`, so a handler opens one transaction, passes it to
//! every query it needs, and commits once: nothing is ever half-written. What a transaction locks,
//! and in which order, is the lock protocol of [`locks`].

pub mod admin_relationships;
pub mod audit;
pub mod customer_relationships;
pub mod customers;
pub mod db;
pub mod deadline;
pub mod errors;
pub mod idempotency;
pub mod lifecycle;
pub mod locks;
pub mod migration;
pub mod partners;
mod point_reads;
pub mod relay;
pub mod replica;
pub mod reseller_links;
pub mod retry;
pub mod subscriptions;
pub mod support_assignments;
pub mod transfers;
pub mod write;

pub use db::{Database, PoolOptions, connect};
pub use migration::Migrator;
pub use point_reads::POINT_READS_APPLICATION_NAME;
pub use replica::ReplicaOptions;
pub use sea_orm::{Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
