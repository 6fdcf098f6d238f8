//! Rules of customer relationships (multi-partner): direct-bill partners and indirect resellers
//! ask, a reseller naming the indirect provider that will bill, with an ACTIVE link to it; the
//! customer accepts or declines; either side ends, unless the partner still transacts ACTIVE
//! subscriptions of the customer. The partner, its billing provider, the customer and operators
//! see a relationship.

use crate::{Error, Move, Principal, ProgramRole, Reason, Transition, facts};

/// Rules 2, 3 and 6 for an indirect reseller: the billing provider is an ACTIVE indirect provider
/// of the reseller's cloud with an ACTIVE link to it (`link_active`, read under the link's lock).
pub fn billing_provider_ready(
    reseller: &facts::Partner,
    provider: &facts::Partner,
    link_active: bool,
) -> Result<(), Error> {
    super::partner_role(provider, ProgramRole::IndirectProvider, "bill a reseller's customers")?;
    super::same_cloud((reseller.id, reseller.cloud), (provider.id, provider.cloud))?;
    super::partner_active(provider)?;
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
pub struct Parties {
    pub partner: facts::Partner,
    pub customer: facts::Customer,
    /// The billing provider, loaded when the partner is a reseller and named one.
    pub provider: Option<facts::Partner>,
    /// Whether the reseller's link with `provider` is ACTIVE.
    pub link_active: bool,
    /// Rule 1: whether the customer's tenant is enrolled as a partner of its cloud.
    pub tenant_enrolled: bool,
}

/// Rules 1, 2, 3 and 6 for RequestCustomerRelationship. `provider_named` is whether the request
/// names a billing provider.
pub fn request(parties: &Parties, provider_named: bool) -> Result<(), Error> {
    let Parties { partner, customer, provider, link_active, tenant_enrolled } = parties;
    super::partner_active(partner)?;
    super::same_cloud((partner.id, partner.cloud), (customer.id, customer.cloud))?;
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
    super::tenant_not_a_partner(customer.id, *tenant_enrolled)
}

/// Rules 1, 3 and 6 again when the customer accepts: the partner is still ACTIVE, its billing
/// provider still ready, and the customer's tenant still no partner.
pub fn accept(parties: &Parties) -> Result<(), Error> {
    super::partner_active(&parties.partner)?;
    if let Some(provider) = &parties.provider {
        billing_provider_ready(&parties.partner, provider, parties.link_active)?;
    }
    super::tenant_not_a_partner(parties.customer.id, parties.tenant_enrolled)
}

/// Rule 8 for EndCustomerRelationship: not while the partner transacts ACTIVE subscriptions of the
/// customer (`transacts_active_subscriptions`, counted under the relationship's lock).
pub fn end(relationship: &facts::CustomerRelationship, transacts_active_subscriptions: bool) -> Result<(), Error> {
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

impl super::Participants for facts::CustomerRelationship {
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
            (Principal::Customer(me), _) => *me == self.customer,
            (Principal::Partner(me), Transition::End) => *me == self.partner,
            (Principal::Partner(_), Transition::Accept | Transition::Decline) => false,
        };
        if allowed { Ok(()) } else { Err(Error::denied(format!("{caller} may not {} {}", transition.verb(), self.id))) }
    }

    fn parties(&self) -> crate::Parties {
        facts::CustomerRelationship::parties(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Participants, test_support::*};
    use crate::{Cloud, CustomerId, CustomerRelationshipId, PartnerId, RelationshipState};

    fn parties(role: ProgramRole) -> Parties {
        let provider = (role == ProgramRole::IndirectReseller).then(|| partner(ProgramRole::IndirectProvider));
        Parties {
            partner: partner(role),
            customer: customer(Cloud::Global),
            provider,
            link_active: true,
            tenant_enrolled: false,
        }
    }

    #[test]
    fn direct_bill_partners_and_resellers_ask_providers_do_not() {
        assert!(request(&parties(ProgramRole::DirectBillPartner), false).is_ok());
        assert!(request(&parties(ProgramRole::IndirectReseller), true).is_ok());
        assert_eq!(reason(request(&parties(ProgramRole::IndirectProvider), false)), "ROLE_NOT_ALLOWED");
        let named = request(&parties(ProgramRole::DirectBillPartner), true);
        assert!(matches!(named, Err(Error::InvalidArgument { field, .. }) if field == "indirect_provider"));
        let unnamed = Parties { provider: None, ..parties(ProgramRole::IndirectReseller) };
        assert!(matches!(request(&unnamed, false), Err(Error::InvalidArgument { .. })));
    }

    #[test]
    fn a_resellers_provider_must_be_ready_to_bill() {
        let unlinked = Parties { link_active: false, ..parties(ProgramRole::IndirectReseller) };
        assert_eq!(reason(request(&unlinked, true)), "NO_ACTIVE_RESELLER_LINK");
        assert_eq!(reason(accept(&unlinked)), "NO_ACTIVE_RESELLER_LINK");
        let mut abroad = parties(ProgramRole::IndirectReseller);
        abroad.provider = abroad.provider.map(|p| in_cloud(p, Cloud::China));
        assert_eq!(reason(request(&abroad, true)), "CROSS_CLOUD");
        let mut direct = parties(ProgramRole::IndirectReseller);
        direct.provider = Some(partner(ProgramRole::DirectBillPartner));
        assert_eq!(reason(request(&direct, true)), "ROLE_NOT_ALLOWED");
        let mut suspended_provider = parties(ProgramRole::IndirectReseller);
        suspended_provider.provider = suspended_provider.provider.map(suspended);
        assert_eq!(reason(accept(&suspended_provider)), "PARTNER_SUSPENDED");
    }

    #[test]
    fn rules_1_2_and_3_hold_at_request_and_at_accept() {
        let enrolled = Parties { tenant_enrolled: true, ..parties(ProgramRole::DirectBillPartner) };
        assert_eq!(reason(request(&enrolled, false)), "PARTNER_AS_CUSTOMER");
        assert_eq!(reason(accept(&enrolled)), "PARTNER_AS_CUSTOMER");
        let mut abroad = parties(ProgramRole::DirectBillPartner);
        abroad.customer.cloud = Cloud::Germany;
        assert_eq!(reason(request(&abroad, false)), "CROSS_CLOUD");
        let mut gone = parties(ProgramRole::DirectBillPartner);
        gone.partner = suspended(gone.partner);
        assert_eq!(reason(request(&gone, false)), "PARTNER_SUSPENDED");
        assert_eq!(reason(accept(&gone)), "PARTNER_SUSPENDED");
    }

    #[test]
    fn the_customer_answers_either_side_ends_the_provider_watches() {
        let relationship = facts::CustomerRelationship {
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
