//! What the rules read of each resource: plain values, no persistence. The store copies them out
//! of its rows (`Model::facts`), the rules in [`crate::rules`] decide on them, and unit tests build
//! them by hand, so every rule is tested without a database.

use crate::{
    AssignmentState, Cloud, CustomerId, CustomerRelationshipId, LinkState, PartnerId, PartnerState, ProgramRole,
    RelationshipState, ResellerLinkId, SubscriptionId, SubscriptionState, SupportAssignmentId, TenantId,
};

/// An enrolled partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partner {
    pub id: PartnerId,
    pub cloud: Cloud,
    pub role: ProgramRole,
    pub state: PartnerState,
}

/// A customer of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub cloud: Cloud,
    pub tenant: TenantId,
    /// The principal that created it (`operator` or `partners/{id}`).
    pub created_by: String,
}

/// The two-tier link between an indirect provider and an indirect reseller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResellerLink {
    pub id: ResellerLinkId,
    pub provider: PartnerId,
    pub reseller: PartnerId,
    pub state: LinkState,
}

/// A partner's relationship with a customer; `indirect_provider` bills when the partner is a
/// reseller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerRelationship {
    pub id: CustomerRelationshipId,
    pub partner: PartnerId,
    pub customer: CustomerId,
    pub indirect_provider: Option<PartnerId>,
    pub state: RelationshipState,
}

/// A subscription; its partners are empty when it was bought outside the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub customer: CustomerId,
    pub partner_of_record: Option<PartnerId>,
    pub billing_partner: Option<PartnerId>,
    pub quantity: i32,
    pub state: SubscriptionState,
}

impl Subscription {
    /// The partners that transact it: the partner of record and the billing partner.
    pub fn transacting_parties(&self) -> impl Iterator<Item = PartnerId> {
        self.partner_of_record.into_iter().chain(self.billing_partner)
    }
}

/// A partner hired to support a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportAssignment {
    pub id: SupportAssignmentId,
    pub subscription: SubscriptionId,
    pub partner: PartnerId,
    pub state: AssignmentState,
}
