//! The partner-center domain vocabulary shared by every service: validated values that cannot
//! hold bad input (parse, don't validate), typed resource names, the calling principal, opaque
//! page tokens and etags, and the single error enum that every service maps to a gRPC status.

pub mod error;
pub mod etag;
pub mod names;
pub mod page;
pub mod principal;
pub mod states;
pub mod values;

pub use error::{Error, Reason, Result};
pub use etag::Etag;
pub use names::{CustomerId, CustomerRelationshipId, PartnerId, ResellerLinkId, SubscriptionId, SupportAssignmentId};
pub use page::{PageKey, PageRequest, PageToken};
pub use principal::Principal;
pub use states::{
    AssignmentState, Cloud, Lifecycle, LinkState, PartnerState, ProductFamily, ProgramRole, RelationshipState,
    SalesChannel, SubscriptionState, Transition,
};
pub use values::{CountryCode, DisplayName, DomainName, OfferId, Quantity, TenantId};
