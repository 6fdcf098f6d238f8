//! One typed change: what every write records, in the same transaction, about each resource it
//! changed. The audit log stores it (`pc_store::audit`), and the change feed will publish it;
//! nothing else describes a change, so no handler spells a state, a field or a party by hand.
//!
//! A change names the method that made it, the resource (its name and [`ResourceKind`]), the state
//! before and after in the domain's one spelling (`ACTIVE`, never the proto's `STATE_ACTIVE`), the
//! fields that changed, the acting principal, the change that caused it (an ending that cascaded),
//! and the [`Parties`] that may see it: who the resource names, as rule 9 and rule 14 decide on
//! them. The parties are recorded at write time, so "who may see this change" is answered from the
//! change alone, even after the resource has moved on.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::Principal;
pub use crate::ResourceKind;

/// The part a party plays in a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The resource is this customer, or belongs to it.
    Customer,
    /// The resource is this partner, or this partner holds it (a customer relationship).
    Partner,
    /// The partner that created a customer (rule 9: it reads the customer until one is claimed).
    Creator,
    PartnerOfRecord,
    BillingPartner,
    /// The indirect provider of a reseller link, or the provider that bills a relationship.
    Provider,
    Reseller,
    /// The partner a support assignment hires.
    SupportPartner,
    /// The partner a transfer moves subscriptions from: on the transfer, and on each subscription
    /// it moved (the partner of record until then).
    Source,
    /// The partner a transfer moves subscriptions to.
    Target,
    /// The billing partner of a subscription until a transfer moved it.
    PreviousBillingPartner,
}

impl Role {
    pub const ALL: &'static [Self] = &[
        Self::Customer,
        Self::Partner,
        Self::Creator,
        Self::PartnerOfRecord,
        Self::BillingPartner,
        Self::Provider,
        Self::Reseller,
        Self::SupportPartner,
        Self::Source,
        Self::Target,
        Self::PreviousBillingPartner,
    ];

    /// The stored name (`billing_partner`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Partner => "partner",
            Self::Creator => "creator",
            Self::PartnerOfRecord => "partner_of_record",
            Self::BillingPartner => "billing_partner",
            Self::Provider => "provider",
            Self::Reseller => "reseller",
            Self::SupportPartner => "support_partner",
            Self::Source => "source",
            Self::Target => "target",
            Self::PreviousBillingPartner => "previous_billing_partner",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|role| role.as_str() == text)
    }
}

/// Who a resource names, by role: the principals besides operators that may see its changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parties(Vec<(Role, String)>);

impl Parties {
    /// Adds `party` (a `partners/..` or `customers/..` name) in `role`; `None` adds nothing.
    pub fn with(mut self, role: Role, party: Option<impl fmt::Display>) -> Self {
        if let Some(party) = party {
            self.0.push((role, party.to_string()));
        }
        self
    }

    /// Each role with its party's name.
    pub fn iter(&self) -> impl Iterator<Item = (Role, &str)> {
        self.0.iter().map(|(role, name)| (*role, name.as_str()))
    }

    /// The party in `role`, if any.
    pub fn get(&self, role: Role) -> Option<&str> {
        self.iter().find(|(r, _)| *r == role).map(|(_, name)| name)
    }

    /// Whether `principal` is one of the parties (operators see everything anyway).
    pub fn includes(&self, principal: &Principal) -> bool {
        let me = principal.to_string();
        self.iter().any(|(_, name)| name == me)
    }
}

/// A value before and after a change; `None` is "not set" (before a create, an unset field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One state change of one resource, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The method that made it (`AcceptCustomerRelationship`); a cascaded change names the method
    /// it amounts to (`EndSupportAssignment`) and its [`Change::cause`].
    pub method: String,
    pub kind: ResourceKind,
    /// The resource's name (`customerRelationships/{id}`).
    pub resource: String,
    /// The state before and after, when the resource has one (a customer has none). A create has
    /// no state before.
    pub state: Option<Delta>,
    /// Every other field that changed, by its stored name (`display_name`, `quantity`).
    pub fields: Vec<(String, Delta)>,
    /// The acting principal (`operator`, `partners/{id}`, `customers/{id}`).
    pub principal: String,
    pub parties: Parties,
    /// The resource whose change made this one (a relationship whose end ended an assignment).
    pub cause: Option<String>,
    /// The admin relationship the principal acted under (rule 13: a partner acting for the
    /// customer by one of its roles), if any.
    pub delegation: Option<String>,
}

impl Change {
    /// The name the feed gives it (rule 14): the resource's kind and the past tense of its
    /// method's verb (`reseller_link.accepted`, `subscription.cancelled`; a cascaded end is its
    /// resource's `ended`).
    pub fn event_type(&self) -> String {
        let verb = match self.method.char_indices().skip(1).find(|(_, c)| c.is_ascii_uppercase()) {
            Some((end, _)) => &self.method[..end],
            None => &self.method,
        };
        let verb = verb.to_ascii_lowercase();
        let past = match verb.as_str() {
            "cancel" => "cancelled".to_owned(),
            "transfer" => "transferred".to_owned(),
            _ if verb.ends_with('e') => format!("{verb}d"),
            _ => format!("{verb}ed"),
        };
        format!("{}.{past}", self.kind.type_name())
    }

    /// Rule 14 on rule 9: whether `caller` could read the resource when the change happened.
    /// Operators read everything and every caller the partner directory; anyone else reads the
    /// changes that name it among their parties, which the write recorded as rule 9 stood then
    /// (so a partner whose relationship ends sees that end and nothing after it).
    pub fn visible_to(&self, caller: &Principal) -> bool {
        caller.is_operator() || self.kind == ResourceKind::Partner || self.parties.includes(caller)
    }
}

/// Where a change stands in the feed (rule 14): the number of the transaction that wrote it, then
/// its id (`pc_store::audit` says why reading after a position misses nothing). Clients hold it
/// as an opaque cursor. A cursor is a place, not a permission: what a caller reads after it is
/// its own view, so an altered cursor shows nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub transaction_id: i64,
    pub id: Uuid,
}

impl Position {
    /// Before every change.
    pub const START: Self = Self { transaction_id: i64::MIN, id: Uuid::nil() };
    const BYTES: usize = 24;

    pub fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut bytes = [0; Self::BYTES];
        bytes[..8].copy_from_slice(&self.transaction_id.to_be_bytes());
        bytes[8..].copy_from_slice(self.id.as_bytes());
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let transaction_id = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let id = Uuid::from_slice(bytes.get(8..Self::BYTES)?).ok()?;
        (bytes.len() == Self::BYTES).then_some(Self { transaction_id, id })
    }

    /// The cursor a client resumes from.
    pub fn cursor(self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_bytes())
    }

    /// The position of a cursor in the request field `field`.
    pub fn parse_cursor(field: &str, cursor: &str) -> Result<Self, crate::Error> {
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| Self::from_bytes(&bytes))
            .ok_or_else(|| crate::Error::invalid(field, "is not a cursor of an event"))
    }

    /// The token of a page of events ending here, for the query (caller and filters) it pages.
    pub fn page_token(self, query: &str, key: &crate::PageKey) -> String {
        crate::PageToken::encode_bytes(&self.to_bytes(), query, key)
    }

    /// The position a page token of `query` carries.
    pub fn parse_page_token(token: &str, query: &str, key: &crate::PageKey) -> Result<Self, crate::Error> {
        let bytes = crate::PageToken::decode_bytes(token, Self::BYTES, query, key)?;
        Self::from_bytes(&bytes).ok_or_else(|| crate::Error::invalid("page_token", "is not a token this list returned"))
    }
}

/// Who made a change and why: what a write is told besides the rows it writes.
#[derive(Debug, Clone)]
pub struct Origin {
    pub method: String,
    pub principal: Principal,
    /// The resource whose change made this one, if it cascaded.
    pub cause: Option<String>,
    /// The admin relationship the principal acts under, if it acts for the customer by a role.
    pub delegation: Option<String>,
}

impl Origin {
    pub fn new(method: impl Into<String>, principal: Principal) -> Self {
        Self { method: method.into(), principal, cause: None, delegation: None }
    }

    /// The same origin, acting under the admin relationship `delegation` (rule 13), if any.
    #[must_use]
    pub fn under(mut self, delegation: Option<crate::AdminRelationshipId>) -> Self {
        self.delegation = delegation.map(|id| id.name());
        self
    }

    /// `method` by the same principal, made because `cause` changed (a cascade).
    pub fn caused(&self, method: impl Into<String>, cause: impl fmt::Display) -> Self {
        Self {
            method: method.into(),
            principal: self.principal,
            cause: Some(cause.to_string()),
            delegation: self.delegation.clone(),
        }
    }
}

// The parties of each resource, from the facts the rules read: written once, here.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer_relationships::CustomerRelationship;
    use crate::customers::Customer;
    use crate::{Cloud, CustomerId, CustomerRelationshipId, PartnerId, RelationshipState, TenantId};

    #[test]
    fn kinds_and_roles_round_trip_their_names() {
        for kind in ResourceKind::ALL {
            assert_eq!(ResourceKind::from_name(kind.as_str()), Some(*kind));
            assert_eq!(ResourceKind::of_name(&format!("{}/x", kind.collection())), Some(*kind));
        }
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.as_str()), Some(*role));
        }
    }

    #[test]
    fn a_relationship_names_its_customer_partner_and_billing_provider() {
        let relationship = CustomerRelationship {
            id: CustomerRelationshipId::generate(),
            partner: PartnerId::generate(),
            customer: CustomerId::generate(),
            indirect_provider: Some(PartnerId::generate()),
            state: RelationshipState::Active,
        };
        let parties = relationship.parties();
        assert!(parties.includes(&Principal::Partner(relationship.partner)));
        assert!(parties.includes(&Principal::Customer(relationship.customer)));
        assert_eq!(parties.get(Role::Provider), relationship.indirect_provider.map(|p| p.name()).as_deref());
        assert!(!parties.includes(&Principal::Partner(PartnerId::generate())));
    }

    #[test]
    fn a_customer_created_by_a_partner_names_its_creator() {
        let creator = PartnerId::generate();
        let customer = Customer {
            id: CustomerId::generate(),
            cloud: Cloud::Global,
            tenant: TenantId(uuid::Uuid::new_v4()),
            created_by: creator.name(),
        };
        assert_eq!(customer.parties().get(Role::Creator), Some(creator.name().as_str()));
        let by_operator = Customer { created_by: Principal::OPERATOR.into(), ..customer };
        assert_eq!(by_operator.parties().get(Role::Creator), None);
    }

    fn change(kind: ResourceKind, method: &str, parties: Parties) -> Change {
        Change {
            method: method.into(),
            kind,
            resource: format!("{}/x", kind.collection()),
            state: None,
            fields: Vec::new(),
            principal: Principal::OPERATOR.into(),
            parties,
            cause: None,
            delegation: None,
        }
    }

    #[test]
    fn event_types_name_the_kind_and_the_past_of_the_verb() {
        let none = Parties::default;
        for (kind, method, event) in [
            (ResourceKind::ResellerLink, "AcceptResellerLink", "reseller_link.accepted"),
            (ResourceKind::ResellerLink, "InviteReseller", "reseller_link.invited"),
            (ResourceKind::Subscription, "CancelSubscription", "subscription.cancelled"),
            (ResourceKind::Subscription, "RegisterExternalSubscription", "subscription.registered"),
            (ResourceKind::Partner, "ReactivatePartner", "partner.reactivated"),
            (ResourceKind::SupportAssignment, "RequestSupport", "support_assignment.requested"),
            (ResourceKind::SupportAssignment, "EndSupportAssignment", "support_assignment.ended"),
            (ResourceKind::CustomerRelationship, "DeclineCustomerRelationship", "customer_relationship.declined"),
            (ResourceKind::Customer, "CreateCustomer", "customer.created"),
            (ResourceKind::Subscription, "TransferSubscription", "subscription.transferred"),
            (ResourceKind::Transfer, "CancelTransfer", "transfer.cancelled"),
            (ResourceKind::Transfer, "ExpireTransfer", "transfer.expired"),
        ] {
            assert_eq!(change(kind, method, none()).event_type(), event);
        }
    }

    #[test]
    fn a_change_is_visible_to_its_parties_operators_and_for_the_directory_everyone() {
        let (partner, stranger) = (PartnerId::generate(), PartnerId::generate());
        let customer = CustomerId::generate();
        let parties = Parties::default().with(Role::Partner, Some(partner)).with(Role::Customer, Some(customer));
        let relationship = change(ResourceKind::CustomerRelationship, "EndCustomerRelationship", parties);
        assert!(relationship.visible_to(&Principal::Partner(partner)));
        assert!(relationship.visible_to(&Principal::Customer(customer)));
        assert!(relationship.visible_to(&Principal::Operator));
        assert!(!relationship.visible_to(&Principal::Partner(stranger)));
        assert!(!relationship.visible_to(&Principal::Customer(CustomerId::generate())));
        let enrolled = change(ResourceKind::Partner, "CreatePartner", Parties::default());
        assert!(enrolled.visible_to(&Principal::Partner(stranger)));
    }

    #[test]
    fn cursors_and_page_tokens_round_trip_and_refuse_what_they_did_not_make() {
        let position = Position { transaction_id: 42, id: Uuid::now_v7() };
        assert_eq!(Position::parse_cursor("after_cursor", &position.cursor()).ok(), Some(position));
        assert!(Position::START < position);
        for bad in ["", "x", "AAAA", &URL_SAFE_NO_PAD.encode([0u8; 25])] {
            assert!(Position::parse_cursor("after_cursor", bad).is_err(), "{bad:?} accepted");
        }
        let key = crate::PageKey::derive(b"secret");
        let token = position.page_token("operator|", &key);
        assert_eq!(Position::parse_page_token(&token, "operator|", &key).ok(), Some(position));
        assert!(Position::parse_page_token(&token, "partners/x|", &key).is_err(), "bound to its query");
    }
}
