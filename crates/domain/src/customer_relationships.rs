//! Customer relationships, multi-partner (states, lifecycle table, facts, rules): direct-bill
//! partners and indirect resellers ask, a reseller naming the indirect provider that will bill,
//! with an ACTIVE link to it; the customer accepts or declines; either side ends, unless the
//! partner still transacts ACTIVE subscriptions of the customer. The partner, its billing provider,
//! the customer and operators see a relationship.

use crate::customers::Customer;
use crate::partners::Partner;
use crate::{
    CustomerId, CustomerRelationshipId, Error, Move, Parties, PartnerId, Principal, ProgramRole, Reason, Role,
    Transition, rules,
};

crate::states::stored_enum!(
    /// A partner's relationship with a customer.
    RelationshipState {
        Pending = "PENDING",
        Active = "ACTIVE",
        Declined = "DECLINED",
        Ended = "ENDED",
        Expired = "EXPIRED",
    }
);

crate::states::two_party_lifecycle!(RelationshipState, Pending);

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

impl CustomerRelationship {
    pub fn parties(&self) -> Parties {
        Parties::default()
            .with(Role::Customer, Some(self.customer))
            .with(Role::Partner, Some(self.partner))
            .with(Role::Provider, self.indirect_provider)
    }
}

/// Rules 2, 3 and 6 for an indirect reseller: the billing provider is an ACTIVE indirect provider
/// of the reseller's cloud with an ACTIVE link to it (`link_active`, read under the link's lock).
pub fn billing_provider_ready(reseller: &Partner, provider: &Partner, link_active: bool) -> Result<(), Error> {
    rules::partner_role(provider, ProgramRole::IndirectProvider, "bill a reseller's customers")?;
    rules::same_cloud((reseller.id, reseller.cloud), (provider.id, provider.cloud))?;
    rules::partner_active(provider)?;
    if !link_active {
        return Err(Error::rule(
            Reason::NoActiveResellerLink,
            format!("{} has no ACTIVE reseller link with {}", reseller.id, provider.id),
        ));
    }
    Ok(())
}

/// What RequestCustomerRelationship and AcceptCustomerRelationship decide on, read under the
/// locks of `pc_store::locks`.
#[derive(Debug, Clone)]
pub struct Grounds {
    pub partner: Partner,
    pub customer: Customer,
    /// The billing provider, loaded when the partner is a reseller and named one.
    pub provider: Option<Partner>,
    /// Whether the reseller's link with `provider` is ACTIVE.
    pub link_active: bool,
    /// Rule 1: whether the customer's tenant is enrolled as a partner of its cloud.
    pub tenant_enrolled: bool,
}

/// Rules 1, 2, 3 and 6 for RequestCustomerRelationship. `provider_named` is whether the request
/// names a billing provider.
pub fn request(grounds: &Grounds, provider_named: bool) -> Result<(), Error> {
    let Grounds { partner, customer, provider, link_active, tenant_enrolled } = grounds;
    rules::partner_active(partner)?;
    rules::same_cloud((partner.id, partner.cloud), (customer.id, customer.cloud))?;
    match partner.role {
        ProgramRole::DirectBillPartner if provider_named => {
            return Err(Error::invalid(
                "indirect_provider",
                "must be empty for a direct-bill partner, which bills itself",
            ));
        }
        ProgramRole::DirectBillPartner => {}
        ProgramRole::IndirectReseller => {
            let provider = provider
                .as_ref()
                .ok_or_else(|| Error::invalid("indirect_provider", "is required for an indirect reseller"))?;
            billing_provider_ready(partner, provider, *link_active)?;
        }
        ProgramRole::IndirectProvider => {
            return Err(Error::rule(
                Reason::RoleNotAllowed,
                format!("{} is an indirect provider, which transacts only through resellers", partner.id),
            ));
        }
    }
    rules::tenant_not_a_partner(customer.id, *tenant_enrolled)
}

/// Rules 1, 3 and 6 again when the customer accepts: the partner is still ACTIVE, its billing
/// provider still ready, and the customer's tenant still no partner.
pub fn accept(grounds: &Grounds) -> Result<(), Error> {
    rules::partner_active(&grounds.partner)?;
    if let Some(provider) = &grounds.provider {
        billing_provider_ready(&grounds.partner, provider, grounds.link_active)?;
    }
    rules::tenant_not_a_partner(grounds.customer.id, grounds.tenant_enrolled)
}

/// Rule 8 for EndCustomerRelationship: not while the partner transacts ACTIVE subscriptions of the
/// customer (`transacts_active_subscriptions`, counted under the relationship's lock).
pub fn end(relationship: &CustomerRelationship, transacts_active_subscriptions: bool) -> Result<(), Error> {
    if transacts_active_subscriptions {
        return Err(Error::rule(
            Reason::ActiveSubscriptions,
            format!(
                "{} still transacts ACTIVE subscriptions of {}; cancel them first",
                relationship.partner, relationship.customer
            ),
        ));
    }
    Ok(())
}

impl rules::Participants for CustomerRelationship {
    type Transition = Transition;

    /// Rule 9: the partner, its billing provider, the customer and operators see a relationship.
    fn may_see(&self, caller: &Principal) -> bool {
        match caller {
            Principal::Operator => true,
            Principal::Partner(me) => *me == self.partner || self.indirect_provider == Some(*me),
            Principal::Customer(me) => *me == self.customer,
        }
    }

    /// Rule 5's "who": the customer answers; the partner or the customer ends; the billing
    /// provider only watches.
    fn may_transition(&self, caller: &Principal, transition: Transition) -> Result<(), Error> {
        let allowed = match (caller, transition) {
            (Principal::Operator, _) => true,
            // The expiry engine's move (rule 15), which no method makes.
            (Principal::Partner(_) | Principal::Customer(_), Transition::Expire) => false,
            (Principal::Customer(me), _) => *me == self.customer,
            (Principal::Partner(me), Transition::End) => *me == self.partner,
            (Principal::Partner(_), Transition::Accept | Transition::Decline) => false,
        };
        if allowed { Ok(()) } else { Err(Error::denied(format!("{caller} may not {} {}", transition.verb(), self.id))) }
    }

    fn parties(&self) -> Parties {
        CustomerRelationship::parties(self)
    }

    /// Rule 13: a relationship is the customer's; it names the partner and its billing provider.
    fn on_behalf(&self, partner: PartnerId) -> Option<crate::access::OnBehalf> {
        Some(crate::access::OnBehalf {
            customer: self.customer,
            names_caller: self.partner == partner || self.indirect_provider == Some(partner),
            outside_program: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cloud, CustomerId, CustomerRelationshipId, PartnerId, RelationshipState};
    use rules::{Participants, test_support::*};

    fn grounds(role: ProgramRole) -> Grounds {
        let provider = (role == ProgramRole::IndirectReseller).then(|| partner(ProgramRole::IndirectProvider));
        Grounds {
            partner: partner(role),
            customer: customer(Cloud::Global),
            provider,
            link_active: true,
            tenant_enrolled: false,
        }
    }

    #[test]
    fn direct_bill_partners_and_resellers_ask_providers_do_not() {
        assert!(request(&grounds(ProgramRole::DirectBillPartner), false).is_ok());
        assert!(request(&grounds(ProgramRole::IndirectReseller), true).is_ok());
        assert_eq!(reason(request(&grounds(ProgramRole::IndirectProvider), false)), "ROLE_NOT_ALLOWED");
        let named = request(&grounds(ProgramRole::DirectBillPartner), true);
        assert!(matches!(named, Err(Error::InvalidArgument { field, .. }) if field == "indirect_provider"));
        let unnamed = Grounds { provider: None, ..grounds(ProgramRole::IndirectReseller) };
        assert!(matches!(request(&unnamed, false), Err(Error::InvalidArgument { .. })));
    }

    #[test]
    fn a_resellers_provider_must_be_ready_to_bill() {
        let unlinked = Grounds { link_active: false, ..grounds(ProgramRole::IndirectReseller) };
        assert_eq!(reason(request(&unlinked, true)), "NO_ACTIVE_RESELLER_LINK");
        assert_eq!(reason(accept(&unlinked)), "NO_ACTIVE_RESELLER_LINK");
        let mut abroad = grounds(ProgramRole::IndirectReseller);
        abroad.provider = abroad.provider.map(|p| in_cloud(p, Cloud::China));
        assert_eq!(reason(request(&abroad, true)), "CROSS_CLOUD");
        let mut direct = grounds(ProgramRole::IndirectReseller);
        direct.provider = Some(partner(ProgramRole::DirectBillPartner));
        assert_eq!(reason(request(&direct, true)), "ROLE_NOT_ALLOWED");
        let mut suspended_provider = grounds(ProgramRole::IndirectReseller);
        suspended_provider.provider = suspended_provider.provider.map(suspended);
        assert_eq!(reason(accept(&suspended_provider)), "PARTNER_SUSPENDED");
    }

    #[test]
    fn rules_1_2_and_3_hold_at_request_and_at_accept() {
        let enrolled = Grounds { tenant_enrolled: true, ..grounds(ProgramRole::DirectBillPartner) };
        assert_eq!(reason(request(&enrolled, false)), "PARTNER_AS_CUSTOMER");
        assert_eq!(reason(accept(&enrolled)), "PARTNER_AS_CUSTOMER");
        let mut abroad = grounds(ProgramRole::DirectBillPartner);
        abroad.customer.cloud = Cloud::Germany;
        assert_eq!(reason(request(&abroad, false)), "CROSS_CLOUD");
        let mut gone = grounds(ProgramRole::DirectBillPartner);
        gone.partner = suspended(gone.partner);
        assert_eq!(reason(request(&gone, false)), "PARTNER_SUSPENDED");
        assert_eq!(reason(accept(&gone)), "PARTNER_SUSPENDED");
    }

    #[test]
    fn the_customer_answers_either_side_ends_the_provider_watches() {
        let relationship = CustomerRelationship {
            id: CustomerRelationshipId::generate(),
            partner: PartnerId::generate(),
            customer: CustomerId::generate(),
            indirect_provider: Some(PartnerId::generate()),
            state: RelationshipState::Pending,
        };
        let partner = Principal::Partner(relationship.partner);
        let customer = Principal::Customer(relationship.customer);
        let provider = Principal::Partner(relationship.indirect_provider.unwrap_or_else(PartnerId::generate));
        assert!(relationship.may_transition(&customer, Transition::Accept).is_ok());
        assert!(relationship.may_transition(&partner, Transition::Accept).is_err());
        assert!(relationship.may_transition(&partner, Transition::End).is_ok());
        assert!(relationship.may_transition(&provider, Transition::End).is_err());
        assert!(relationship.may_see(&provider) && relationship.may_see(&customer));
        assert!(!relationship.may_see(&Principal::Customer(CustomerId::generate())));
        assert_eq!(reason(end(&relationship, true)), "ACTIVE_SUBSCRIPTIONS");
        assert!(end(&relationship, false).is_ok());
    }
}
