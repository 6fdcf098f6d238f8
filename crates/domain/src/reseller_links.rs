//! Reseller links, the two-tier model (states, lifecycle table, facts, rules): an ACTIVE indirect
//! provider invites an ACTIVE indirect reseller of its cloud; the reseller accepts or declines;
//! either side ends, unless ACTIVE subscriptions are still billed through the link. Only the two
//! parties and operators see a link.

use crate::partners::Partner;
use crate::{Error, Move, Parties, PartnerId, Principal, ProgramRole, Reason, ResellerLinkId, Role, Transition, rules};

crate::states::stored_enum!(
    /// The two-tier link between a provider and a reseller.
    LinkState { Invited = "INVITED", Active = "ACTIVE", Declined = "DECLINED", Ended = "ENDED", Expired = "EXPIRED" }
);

crate::states::two_party_lifecycle!(LinkState, Invited);

/// The two-tier link between an indirect provider and an indirect reseller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResellerLink {
    pub id: ResellerLinkId,
    pub provider: PartnerId,
    pub reseller: PartnerId,
    pub state: LinkState,
}

impl ResellerLink {
    pub fn parties(&self) -> Parties {
        Parties::default().with(Role::Provider, Some(self.provider)).with(Role::Reseller, Some(self.reseller))
    }
}

/// Rules 2 and 3 for InviteReseller.
pub fn invite_reseller(provider: &Partner, reseller: &Partner) -> Result<(), Error> {
    rules::partner_role(provider, ProgramRole::IndirectProvider, "invite resellers")?;
    rules::partner_role(reseller, ProgramRole::IndirectReseller, "be invited as a reseller")?;
    rules::same_cloud((provider.id, provider.cloud), (reseller.id, reseller.cloud))?;
    rules::partner_active(provider)?;
    rules::partner_active(reseller)
}

/// Whose links a list covers: a partner's own, or every link for operators (`None`). Customers
/// are no party to links.
pub fn list_party(caller: &Principal) -> Result<Option<PartnerId>, Error> {
    match caller {
        Principal::Operator => Ok(None),
        Principal::Partner(me) => Ok(Some(*me)),
        Principal::Customer(_) => Err(Error::denied("customers are not parties to reseller links")),
    }
}

/// Rule 3 for AcceptResellerLink: both partners are still ACTIVE.
pub fn accept(provider: &Partner, reseller: &Partner) -> Result<(), Error> {
    rules::partner_active(provider)?;
    rules::partner_active(reseller)
}

/// Rule 8 for EndResellerLink: an ACTIVE link ends only when no ACTIVE subscription is billed by
/// its provider through its reseller (`carries_active_subscriptions`, counted under the link's lock).
pub fn end(link: &ResellerLink, carries_active_subscriptions: bool) -> Result<(), Error> {
    if link.state == LinkState::Active && carries_active_subscriptions {
        return Err(Error::rule(
            Reason::ActiveSubscriptions,
            format!(
                "{} still carries ACTIVE subscriptions billed by {} through {}",
                link.id, link.provider, link.reseller
            ),
        ));
    }
    Ok(())
}

impl rules::Participants for ResellerLink {
    type Transition = Transition;

    /// Rule 9: the provider, the reseller and operators see a link.
    fn may_see(&self, caller: &Principal) -> bool {
        match caller {
            Principal::Operator => true,
            Principal::Partner(me) => *me == self.provider || *me == self.reseller,
            Principal::Customer(_) => false,
        }
    }

    /// Rule 5's "who": only the invited reseller (or an operator) answers an invitation; either
    /// party ends the link.
    fn may_transition(&self, caller: &Principal, transition: Transition) -> Result<(), Error> {
        let allowed = match (caller, transition) {
            (Principal::Operator, _) => true,
            // The expiry engine's move (rule 15), which no method makes.
            (Principal::Partner(_) | Principal::Customer(_), Transition::Expire) => false,
            (Principal::Partner(me), Transition::End) => *me == self.provider || *me == self.reseller,
            (Principal::Partner(me), Transition::Accept | Transition::Decline) => *me == self.reseller,
            (Principal::Customer(_), _) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::denied(format!(
                "only {} or an operator may {} this invitation",
                self.reseller,
                transition.verb()
            )))
        }
    }

    fn parties(&self) -> crate::Parties {
        ResellerLink::parties(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cloud, CustomerId, ResellerLinkId};
    use rules::{Participants, test_support::*};

    fn link(state: LinkState) -> ResellerLink {
        ResellerLink {
            id: ResellerLinkId::generate(),
            provider: PartnerId::generate(),
            reseller: PartnerId::generate(),
            state,
        }
    }

    #[test]
    fn an_active_provider_invites_an_active_reseller_of_its_cloud() {
        let (provider, reseller) = (partner(ProgramRole::IndirectProvider), partner(ProgramRole::IndirectReseller));
        assert!(invite_reseller(&provider, &reseller).is_ok());
        assert_eq!(reason(invite_reseller(&reseller, &provider)), "ROLE_NOT_ALLOWED");
        assert_eq!(reason(invite_reseller(&provider, &partner(ProgramRole::DirectBillPartner))), "ROLE_NOT_ALLOWED");
        assert_eq!(reason(invite_reseller(&provider, &in_cloud(reseller, Cloud::UsGovernment))), "CROSS_CLOUD");
        assert_eq!(reason(invite_reseller(&provider, &suspended(reseller))), "PARTNER_SUSPENDED");
        assert_eq!(reason(accept(&suspended(provider), &reseller)), "PARTNER_SUSPENDED");
    }

    #[test]
    fn the_reseller_answers_and_either_side_ends() {
        let link = link(LinkState::Invited);
        let (provider, reseller) = (Principal::Partner(link.provider), Principal::Partner(link.reseller));
        let stranger = Principal::Partner(PartnerId::generate());
        for transition in [Transition::Accept, Transition::Decline] {
            assert!(link.may_transition(&reseller, transition).is_ok());
            assert!(link.may_transition(&Principal::Operator, transition).is_ok());
            assert!(link.may_transition(&provider, transition).is_err());
        }
        assert!(link.may_transition(&provider, Transition::End).is_ok());
        assert!(link.may_transition(&stranger, Transition::End).is_err());
        assert!(link.may_see(&provider) && link.may_see(&reseller) && !link.may_see(&stranger));
        assert!(!link.may_see(&Principal::Customer(CustomerId::generate())));
    }

    #[test]
    fn an_active_link_billing_active_subscriptions_does_not_end() {
        assert_eq!(reason(end(&link(LinkState::Active), true)), "ACTIVE_SUBSCRIPTIONS");
        assert!(end(&link(LinkState::Active), false).is_ok());
        assert!(end(&link(LinkState::Invited), true).is_ok());
    }
}
