//! SeaORM entities, one per table. Enum columns hold the domain enums of `pc_domain::states`,
//! stored by name (`GLOBAL`, `ACTIVE`), so the tables read naturally in SQL.

pub mod audit_event;
pub mod customer;
pub mod customer_relationship;
pub mod idempotency_key;
pub mod partner;
pub mod reseller_link;
pub mod subscription;
pub mod support_assignment;

/// A resource row, keyed by its id (what a list's page token points after).
pub trait Keyed {
    fn key(&self) -> uuid::Uuid;
}

macro_rules! keyed {
    ($($model:path),+ $(,)?) => {$(
        impl Keyed for $model {
            fn key(&self) -> uuid::Uuid {
                self.id
            }
        }
    )+};
}

keyed!(
    customer::Model,
    customer_relationship::Model,
    partner::Model,
    reseller_link::Model,
    subscription::Model,
    support_assignment::Model,
);
