//! The partner-center domain: validated values that cannot hold bad input (parse, don't
//! validate), typed resource names, the calling principal, opaque page tokens and etags, the
//! typed change every write records, and the single error enum that the server maps to a gRPC
//! status. It knows neither gRPC nor the database (the `persistence` feature adds only SeaORM's
//! derives, for the store).
//!
//! Each resource has one module, named like the service module that serves it
//! (`customer_relationships`): its states and their lifecycle table, the facts its rules read (the
//! store copies them out of its rows, unit tests build them by hand), the parties its changes
//! record, and every rule of docs/domain.md about it as a pure function, unit-tested there. The
//! rules several resources share are in [`rules`]. A new resource is a module here and one line of
//! `resources!` below.

pub mod access;
pub mod change;
pub mod error;
pub mod etag;
mod names;
pub mod page;
pub mod principal;
pub mod rules;
pub mod states;
pub mod values;

pub mod admin_relationships;
pub mod customer_relationships;
pub mod customers;
pub mod partners;
pub mod reseller_links;
pub mod subscriptions;
pub mod support_assignments;
pub mod transfers;

names::resources! {
    /// `partners/{id}`
    PartnerId, "partners", Partner, "PARTNER";
    /// `customers/{id}`
    CustomerId, "customers", Customer, "CUSTOMER";
    /// `resellerLinks/{id}`
    ResellerLinkId, "resellerLinks", ResellerLink, "RESELLER_LINK";
    /// `customerRelationships/{id}`
    CustomerRelationshipId, "customerRelationships", CustomerRelationship, "CUSTOMER_RELATIONSHIP";
    /// `subscriptions/{id}`
    SubscriptionId, "subscriptions", Subscription, "SUBSCRIPTION";
    /// `supportAssignments/{id}`
    SupportAssignmentId, "supportAssignments", SupportAssignment, "SUPPORT_ASSIGNMENT";
    /// `transfers/{id}`
    TransferId, "transfers", Transfer, "TRANSFER";
    /// `adminRelationships/{id}`
    AdminRelationshipId, "adminRelationships", AdminRelationship, "ADMIN_RELATIONSHIP";
}

pub use admin_relationships::{AdminMove, AdminRelationshipState, AdminRole};
pub use change::{Change, Origin, Parties, Position, Role};
pub use customer_relationships::RelationshipState;
pub use error::{Error, Reason, Result};
pub use etag::Etag;
pub use names::ResourceId;
pub use page::{PageKey, PageRequest, PageToken};
pub use partners::{PartnerState, ProgramRole};
pub use principal::Principal;
pub use reseller_links::LinkState;
pub use states::{Cloud, Lifecycle, Move, Stamp, Transition};
pub use subscriptions::{ProductFamily, SalesChannel, SubscriptionState};
pub use support_assignments::AssignmentState;
pub use transfers::{TransferMove, TransferState};
pub use values::{CountryCode, DisplayName, DomainName, OfferId, Quantity, TenantId};
