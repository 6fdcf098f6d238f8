//! Subscriptions (their kinds, channels and states, facts and rules). Bought through the program
//! (rule 6): the partner of record needs an ACTIVE relationship with the customer; a direct-bill
//! partner bills itself, an indirect reseller's provider bills through an ACTIVE link. Bought
//! elsewhere: an operator registers it with no partner. Its transacting partners (or an operator)
//! change and cancel it; a SUSPENDED one lowers quantities but raises none (rule 3).

use crate::customer_relationships::CustomerRelationship;
use crate::customers::Customer;
use crate::partners::Partner;
use crate::{CustomerId, Error, Parties, PartnerId, Principal, ProgramRole, Reason, Role, SubscriptionId, rules};

crate::states::stored_enum!(
    /// What kind of online service a subscription is.
    ProductFamily {
        Productivity = "PRODUCTIVITY",
        Azure = "AZURE",
        Dynamics = "DYNAMICS",
        Security = "SECURITY",
        Other = "OTHER",
    }
);

crate::states::stored_enum!(
    /// How a subscription was bought: through the program (direct-bill or indirect) or elsewhere.
    SalesChannel {
        ProgramDirectBill = "PROGRAM_DIRECT_BILL",
        ProgramIndirect = "PROGRAM_INDIRECT",
        VendorDirect = "VENDOR_DIRECT",
        EnterpriseAgreement = "ENTERPRISE_AGREEMENT",
    }
);

crate::states::stored_enum!(
    /// A subscription's state.
    SubscriptionState { Active = "ACTIVE", Suspended = "SUSPENDED", Cancelled = "CANCELLED" }
);

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
    pub fn parties(&self) -> Parties {
        Parties::default()
            .with(Role::Customer, Some(self.customer))
            .with(Role::PartnerOfRecord, self.partner_of_record)
            .with(Role::BillingPartner, self.billing_partner)
    }

    /// The partners that transact it: the partner of record and the billing partner.
    pub fn transacting_parties(&self) -> impl Iterator<Item = PartnerId> {
        self.partner_of_record.into_iter().chain(self.billing_partner)
    }
}

/// What CreateSubscription decides on, read under the locks of `pc_store::locks`.
#[derive(Debug, Clone)]
pub struct Sale {
    pub partner: Partner,
    pub customer: Customer,
    /// The partner's ACTIVE relationship with the customer, if any.
    pub relationship: Option<CustomerRelationship>,
    /// The provider that would bill a reseller's sale, locked before the relationship.
    pub provider: Option<Partner>,
    /// Whether the reseller's link with `provider` is ACTIVE.
    pub link_active: bool,
}

/// Rules 2, 3 and 6 for CreateSubscription: the channel the sale goes through and who bills it.
pub fn sell(sale: &Sale) -> Result<(SalesChannel, PartnerId), Error> {
    let Sale { partner, customer, relationship, provider, link_active } = sale;
    rules::partner_active(partner)?;
    rules::same_cloud((partner.id, partner.cloud), (customer.id, customer.cloud))?;
    let relationship = relationship.as_ref().ok_or_else(|| {
        Error::rule(
            Reason::NoActiveRelationship,
            format!("{} has no ACTIVE customer relationship with {}", partner.id, customer.id),
        )
    })?;
    match partner.role {
        ProgramRole::DirectBillPartner => Ok((SalesChannel::ProgramDirectBill, partner.id)),
        ProgramRole::IndirectReseller => {
            let provider = match provider {
                Some(provider) if relationship.indirect_provider == Some(provider.id) => provider,
                // Another relationship went live between the unlocked read that chose whom to lock
                // and the lock: the provider locked is not this one's. Another attempt sees it.
                _ => return Err(Error::Conflict(format!("the relationship of {} changed; retry", partner.id))),
            };
            rules::partner_active(provider)?;
            if !link_active {
                return Err(Error::rule(
                    Reason::NoActiveResellerLink,
                    format!(
                        "{} no longer has an ACTIVE reseller link with its billing provider {}",
                        partner.id, provider.id
                    ),
                ));
            }
            Ok((SalesChannel::ProgramIndirect, provider.id))
        }
        ProgramRole::IndirectProvider => Err(Error::rule(
            Reason::RoleNotAllowed,
            format!("{} is an indirect provider, which sells only through resellers", partner.id),
        )),
    }
}

/// Rule 9 before rule 6: a partner sells only to a customer it may read (`partner_sees`); for any
/// other, existing or not, it is PERMISSION_DENIED and learns nothing of it. An operator acting
/// for the partner is told that a missing customer does not exist.
pub fn customer_to_sell_to<T>(
    caller: &Principal,
    customer: CustomerId,
    found: Option<T>,
    partner_sees: bool,
) -> Result<T, Error> {
    rules::reveal(caller, customer, found, |_| caller.is_operator() || partner_sees)
}

/// RegisterExternalSubscription records what was bought outside the program: through the vendor
/// or an enterprise agreement, with no partner of record.
pub fn register_external(channel: SalesChannel, partner_of_record_named: bool) -> Result<(), Error> {
    if !matches!(channel, SalesChannel::VendorDirect | SalesChannel::EnterpriseAgreement) {
        return Err(Error::invalid(
            "subscription.sales_channel",
            "must be VENDOR_DIRECT or ENTERPRISE_AGREEMENT; program sales use CreateSubscription",
        ));
    }
    if partner_of_record_named {
        return Err(Error::invalid(
            "subscription.partner_of_record",
            "must be empty for a subscription bought elsewhere",
        ));
    }
    Ok(())
}

/// Rule 9: operators see every subscription, a customer its own, a partner those it transacts,
/// bills or actively supports (`partner_sees`: the store answers the last, `subscriptions::list`
/// and `visible_to_partner` being this rule as SQL).
pub fn may_see(caller: &Principal, subscription: &Subscription, partner_sees: bool) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::Customer(me) => *me == subscription.customer,
        Principal::Partner(_) => partner_sees,
    }
}

/// Who changes a subscription: its partner of record, its billing partner, or an operator.
pub fn may_change(caller: &Principal, subscription: &Subscription, what: &str) -> Result<(), Error> {
    let allowed = match caller {
        Principal::Operator => true,
        Principal::Partner(me) => subscription.transacting_parties().any(|party| party == *me),
        Principal::Customer(_) => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::denied(format!("only the partner of record, the billing partner or an operator may {what}")))
    }
}

fn require_state(subscription: &Subscription, allowed: &[SubscriptionState], what: &str) -> Result<(), Error> {
    if allowed.contains(&subscription.state) {
        Ok(())
    } else {
        Err(Error::rule(
            Reason::InvalidTransition,
            format!("cannot {what} {}: it is {}", subscription.id, subscription.state),
        ))
    }
}

/// UpdateSubscription's quantity: only of an ACTIVE subscription, and more licences are new
/// business, which SUSPENDED transacting partners (`parties`, locked) do not start (rule 3).
pub fn change_quantity(subscription: &Subscription, quantity: i32, parties: &[Partner]) -> Result<(), Error> {
    require_state(subscription, &[SubscriptionState::Active], "change the quantity of")?;
    if quantity > subscription.quantity {
        parties.iter().try_for_each(rules::partner_active)?;
    }
    Ok(())
}

/// CancelSubscription: an ACTIVE or SUSPENDED subscription becomes CANCELLED.
pub fn cancel(subscription: &Subscription) -> Result<SubscriptionState, Error> {
    require_state(subscription, &[SubscriptionState::Active, SubscriptionState::Suspended], "cancel")?;
    Ok(SubscriptionState::Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use crate::{Cloud, CustomerRelationshipId, RelationshipState, SubscriptionId};

    fn sale(role: ProgramRole) -> Sale {
        let seller = partner(role);
        let customer = customer(Cloud::Global);
        let provider = (role == ProgramRole::IndirectReseller).then(|| partner(ProgramRole::IndirectProvider));
        let relationship = CustomerRelationship {
            id: CustomerRelationshipId::generate(),
            partner: seller.id,
            customer: customer.id,
            indirect_provider: provider.map(|p| p.id),
            state: RelationshipState::Active,
        };
        Sale { partner: seller, customer, relationship: Some(relationship), provider, link_active: true }
    }

    fn subscription(state: SubscriptionState) -> Subscription {
        Subscription {
            id: SubscriptionId::generate(),
            customer: CustomerId::generate(),
            partner_of_record: Some(PartnerId::generate()),
            billing_partner: Some(PartnerId::generate()),
            quantity: 10,
            state,
        }
    }

    #[test]
    fn who_bills_follows_from_the_sellers_role() {
        let direct = sale(ProgramRole::DirectBillPartner);
        assert_eq!(sell(&direct).ok(), Some((SalesChannel::ProgramDirectBill, direct.partner.id)));
        let indirect = sale(ProgramRole::IndirectReseller);
        let provider = indirect.provider.map(|p| p.id);
        assert_eq!(sell(&indirect).ok().map(|(c, b)| (c, Some(b))), Some((SalesChannel::ProgramIndirect, provider)));
        assert_eq!(reason(sell(&sale(ProgramRole::IndirectProvider))), "ROLE_NOT_ALLOWED");
    }

    #[test]
    fn a_sale_needs_an_active_relationship_and_a_live_billing_link() {
        assert_eq!(
            reason(sell(&Sale { relationship: None, ..sale(ProgramRole::DirectBillPartner) })),
            "NO_ACTIVE_RELATIONSHIP"
        );
        let unlinked = Sale { link_active: false, ..sale(ProgramRole::IndirectReseller) };
        assert_eq!(reason(sell(&unlinked)), "NO_ACTIVE_RESELLER_LINK");
        let mut stopped = sale(ProgramRole::IndirectReseller);
        stopped.provider = stopped.provider.map(suspended);
        assert_eq!(reason(sell(&stopped)), "PARTNER_SUSPENDED");
        let mut abroad = sale(ProgramRole::DirectBillPartner);
        abroad.customer.cloud = Cloud::China;
        assert_eq!(reason(sell(&abroad)), "CROSS_CLOUD");
        let mut moved = sale(ProgramRole::IndirectReseller);
        moved.provider = Some(partner(ProgramRole::IndirectProvider));
        assert!(matches!(sell(&moved), Err(Error::Conflict(_))));
    }

    #[test]
    fn quantities_rise_only_with_active_partners_and_only_live_subscriptions_change() {
        let active = subscription(SubscriptionState::Active);
        let stopped = suspended(partner(ProgramRole::DirectBillPartner));
        assert_eq!(reason(change_quantity(&active, 11, &[stopped])), "PARTNER_SUSPENDED");
        assert!(change_quantity(&active, 9, &[stopped]).is_ok());
        assert_eq!(reason(change_quantity(&subscription(SubscriptionState::Cancelled), 9, &[])), "INVALID_TRANSITION");
        assert_eq!(cancel(&subscription(SubscriptionState::Suspended)).ok(), Some(SubscriptionState::Cancelled));
        assert_eq!(reason(cancel(&subscription(SubscriptionState::Cancelled))), "INVALID_TRANSITION");
    }

    #[test]
    fn transacting_partners_change_a_subscription_customers_do_not() {
        let subscription = subscription(SubscriptionState::Active);
        for party in subscription.transacting_parties() {
            assert!(may_change(&Principal::Partner(party), &subscription, "x").is_ok());
        }
        assert!(may_change(&Principal::Partner(PartnerId::generate()), &subscription, "x").is_err());
        assert!(may_change(&Principal::Customer(subscription.customer), &subscription, "x").is_err());
        assert!(may_see(&Principal::Customer(subscription.customer), &subscription, false));
        assert!(!may_see(&Principal::Partner(PartnerId::generate()), &subscription, false));
        assert!(register_external(SalesChannel::ProgramIndirect, false).is_err());
        assert!(register_external(SalesChannel::VendorDirect, true).is_err());
        assert!(register_external(SalesChannel::EnterpriseAgreement, false).is_ok());
        let partner = Principal::Partner(PartnerId::generate());
        let hidden = customer_to_sell_to(&partner, subscription.customer, Some(()), false);
        let missing = customer_to_sell_to::<()>(&partner, subscription.customer, None, false);
        assert_eq!(hidden.err().map(|e| e.to_string()), missing.err().map(|e| e.to_string()));
        let told = customer_to_sell_to::<()>(&Principal::Operator, subscription.customer, None, false);
        assert!(matches!(told, Err(Error::NotFound { .. })));
    }
}
