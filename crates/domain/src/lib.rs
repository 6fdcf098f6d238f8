//! The partner-center domain: validated values that cannot hold bad input (parse, don't
//! validate), typed resource names and states, the calling principal, opaque page tokens and
//! etags, every rule of docs/domain.md as a pure function ([`rules`], over the plain [`facts`]),
//! and the single error enum that the server maps to a gRPC status. It knows neither gRPC nor
//! the database (the `persistence` feature adds only SeaORM's derives, for the store).

pub mod change;
pub mod error;
pub mod etag;
pub mod facts;
pub mod names;
pub mod page;
pub mod principal;
pub mod rules;
pub mod states;
pub mod values;

pub use change::{Change, Origin, Parties, Role};
pub use error::{Error, Reason, Result};
pub use etag::Etag;
pub use names::{
    CustomerId, CustomerRelationshipId, PartnerId, ResellerLinkId, ResourceKind, SubscriptionId, SupportAssignmentId,
};
pub use page::{PageKey, PageRequest, PageToken};
pub use principal::Principal;
pub use states::{
    AssignmentState, Cloud, Lifecycle, LinkState, Move, PartnerState, ProductFamily, ProgramRole, RelationshipState,
    SalesChannel, Stamp, SubscriptionState, Transition,
};
pub use values::{CountryCode, DisplayName, DomainName, OfferId, Quantity, TenantId};
