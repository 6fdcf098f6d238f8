//! SeaORM entities, one per table. Enum columns hold the proto enum value without its prefix
//! (`GLOBAL`, `ACTIVE`), so the tables read naturally in SQL.

pub mod audit_event;
pub mod customer;
pub mod customer_relationship;
pub mod idempotency_key;
pub mod partner;
pub mod reseller_link;
pub mod subscription;
pub mod support_assignment;
