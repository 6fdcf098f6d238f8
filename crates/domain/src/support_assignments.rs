//! Support assignments, multi-channel (states, lifecycle table, facts, rules), rule 7: a partner
//! with an ACTIVE relationship asks to support an ACTIVE subscription it did not sell; the customer
//! accepts or declines; either side ends. At most one assignment per subscription is ACTIVE. The
//! assignment's partner, the subscription's customer and operators see an assignment.

use crate::customers::Customer;
use crate::partners::Partner;
use crate::subscriptions::Subscription;
use crate::{
    CustomerId, Error, Move, Parties, PartnerId, Principal, Reason, Role, SubscriptionId, SubscriptionState,
    SupportAssignmentId, Transition, rules,
};

crate::states::stored_enum!(
    /// A partner hired to support a subscription it did not sell.
    AssignmentState {
        Requested = "REQUESTED",
        Active = "ACTIVE",
        Declined = "DECLINED",
        Ended = "ENDED",
        Expired = "EXPIRED",
    }
);

crate::states::two_party_lifecycle!(AssignmentState, Requested);

/// A partner hired to support a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportAssignment {
    pub id: SupportAssignmentId,
    pub subscription: SubscriptionId,
    pub partner: PartnerId,
    pub state: AssignmentState,
}

impl SupportAssignment {
    /// Its partner and its subscription's customer (who hires and ends).
    pub fn parties(&self, customer: CustomerId) -> Parties {
        Parties::default().with(Role::Customer, Some(customer)).with(Role::SupportPartner, Some(self.partner))
    }
}

/// What rule 7 looks at when a partner asks to support a subscription and when the customer
/// accepts, read under the locks of `pc_store::locks`.
#[derive(Debug, Clone)]
pub struct Grounds {
    pub partner: Partner,
    pub customer: Customer,
    /// Whether the partner holds an ACTIVE relationship with the subscription's customer.
    pub has_active_relationship: bool,
    pub subscription: Subscription,
}

fn refused(message: String) -> Error {
    Error::rule(Reason::SupportNotAllowed, message)
}

/// Rule 9 before rule 7 for RequestSupport: a partner without an ACTIVE relationship with the
/// subscription's customer may not see the subscription, so it is PERMISSION_DENIED, the same
/// answer as for a subscription that does not exist, before any rule could describe it.
pub fn may_request(caller: &Principal, grounds: &Grounds) -> Result<(), Error> {
    if caller.is_operator() || grounds.has_active_relationship {
        Ok(())
    } else {
        Err(Error::denied(format!("{} may not request support for {}", grounds.partner.id, grounds.subscription.id)))
    }
}

/// Rule 7's standing conditions, checked on request and again on accept: the partner is ACTIVE
/// and of the customer's cloud, the subscription ACTIVE and sold by someone else, and the partner
/// holds an ACTIVE relationship with the customer.
pub fn may_support(grounds: &Grounds) -> Result<(), Error> {
    let Grounds { partner, customer, has_active_relationship, subscription } = grounds;
    rules::partner_active(partner)?;
    rules::same_cloud((partner.id, partner.cloud), (customer.id, customer.cloud))?;
    if subscription.partner_of_record == Some(partner.id) {
        return Err(refused(format!("{} is the partner of record of {} already", partner.id, subscription.id)));
    }
    if subscription.state != SubscriptionState::Active {
        return Err(refused(format!("{} is {}", subscription.id, subscription.state)));
    }
    if !has_active_relationship {
        return Err(Error::rule(
            Reason::NoActiveRelationship,
            format!("{} has no ACTIVE customer relationship with {}", partner.id, customer.id),
        ));
    }
    Ok(())
}

/// Rule 7 for AcceptSupportAssignment: the standing conditions, and no other ACTIVE assignment
/// of the subscription (`another_active`).
pub fn accept(grounds: &Grounds, another_active: bool) -> Result<(), Error> {
    may_support(grounds)?;
    if another_active {
        return Err(one_active_already(&grounds.subscription));
    }
    Ok(())
}

/// The refusal of a second ACTIVE support partner, whether counted or caught by the unique index.
pub fn one_active_already(subscription: &Subscription) -> Error {
    refused(format!("{} already has an ACTIVE support partner", subscription.id))
}

/// Rule 9: the assignment's partner, the subscription's customer and operators see it.
pub fn may_see(caller: &Principal, assignment: &SupportAssignment, subscription: &Subscription) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::Partner(me) => *me == assignment.partner,
        Principal::Customer(me) => *me == subscription.customer,
    }
}

/// Rule 5's "who": the customer hires (accepts or declines); either side ends.
pub fn may_transition(
    caller: &Principal,
    assignment: &SupportAssignment,
    subscription: &Subscription,
    transition: Transition,
) -> Result<(), Error> {
    let allowed = match (caller, transition) {
        (Principal::Operator, _) => true,
        // The expiry engine's move (rule 15), which no method makes.
        (Principal::Partner(_) | Principal::Customer(_), Transition::Expire) => false,
        (Principal::Customer(me), _) => *me == subscription.customer,
        (Principal::Partner(me), Transition::End) => *me == assignment.partner,
        (Principal::Partner(_), Transition::Accept | Transition::Decline) => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::denied(format!("only the customer or an operator may {} {}", transition.verb(), assignment.id)))
    }
}

/// An assignment with its subscription, whose customer hires and ends it.
impl rules::Participants for (SupportAssignment, Subscription) {
    type Transition = Transition;

    fn may_see(&self, caller: &Principal) -> bool {
        may_see(caller, &self.0, &self.1)
    }

    fn may_transition(&self, caller: &Principal, transition: Transition) -> Result<(), Error> {
        may_transition(caller, &self.0, &self.1, transition)
    }

    fn parties(&self) -> crate::Parties {
        self.0.parties(self.1.customer)
    }

    /// Rule 13: an assignment is the subscription's customer's; it names its partner.
    fn on_behalf(&self, partner: crate::PartnerId) -> Option<crate::access::OnBehalf> {
        Some(crate::access::OnBehalf {
            customer: self.1.customer,
            names_caller: self.0.partner == partner,
            outside_program: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use crate::{AssignmentState, Cloud, CustomerId, PartnerId, ProgramRole, SubscriptionId, SupportAssignmentId};

    fn grounds() -> Grounds {
        let customer = customer(Cloud::Global);
        let subscription = Subscription {
            id: SubscriptionId::generate(),
            customer: customer.id,
            partner_of_record: None,
            billing_partner: None,
            quantity: 1,
            state: SubscriptionState::Active,
        };
        Grounds {
            partner: partner(ProgramRole::DirectBillPartner),
            customer,
            has_active_relationship: true,
            subscription,
        }
    }

    #[test]
    fn a_partner_supports_what_it_did_not_sell_for_a_customer_it_works_with() {
        assert!(may_support(&grounds()).is_ok());
        let mut own = grounds();
        own.subscription.partner_of_record = Some(own.partner.id);
        assert_eq!(reason(may_support(&own)), "SUPPORT_NOT_ALLOWED");
        let mut cancelled = grounds();
        cancelled.subscription.state = SubscriptionState::Cancelled;
        assert_eq!(reason(may_support(&cancelled)), "SUPPORT_NOT_ALLOWED");
        let strangers = Grounds { has_active_relationship: false, ..grounds() };
        assert_eq!(reason(may_support(&strangers)), "NO_ACTIVE_RELATIONSHIP");
        let partner = Principal::Partner(strangers.partner.id);
        assert!(matches!(may_request(&partner, &strangers), Err(Error::PermissionDenied { .. })));
        assert!(may_request(&Principal::Operator, &strangers).is_ok());
        let mut stopped = grounds();
        stopped.partner = suspended(stopped.partner);
        assert_eq!(reason(may_support(&stopped)), "PARTNER_SUSPENDED");
        assert_eq!(reason(accept(&grounds(), true)), "SUPPORT_NOT_ALLOWED");
    }

    #[test]
    fn the_customer_hires_and_either_side_ends() {
        let grounds = grounds();
        let assignment = SupportAssignment {
            id: SupportAssignmentId::generate(),
            subscription: grounds.subscription.id,
            partner: grounds.partner.id,
            state: AssignmentState::Requested,
        };
        let (partner, customer) = (Principal::Partner(assignment.partner), Principal::Customer(grounds.customer.id));
        let sub = &grounds.subscription;
        assert!(may_transition(&customer, &assignment, sub, Transition::Accept).is_ok());
        assert!(may_transition(&partner, &assignment, sub, Transition::Accept).is_err());
        assert!(may_transition(&partner, &assignment, sub, Transition::End).is_ok());
        let other = Principal::Customer(CustomerId::generate());
        assert!(may_transition(&other, &assignment, sub, Transition::Decline).is_err());
        assert!(may_see(&partner, &assignment, sub) && may_see(&customer, &assignment, sub));
        assert!(!may_see(&Principal::Partner(PartnerId::generate()), &assignment, sub));
    }
}
