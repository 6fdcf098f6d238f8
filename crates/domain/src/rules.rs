//! The rules of docs/domain.md that several resources share, as pure functions over the facts of
//! each resource's module (`crate::partners::Partner`, ...); each resource's own rules are in its
//! module, each function named for what it decides. A handler gathers the facts (under the locks
//! of `pc_store::locks`), asks the rules, and writes; no rule reads a database, so every rule is
//! unit-tested below its definition.
//!
//! Shared here: rule 3's checks of a partner, rule 2 (clouds), rule 1 from both sides, rule 5's
//! check of a move against its resource's lifecycle table, rule 9's [`reveal`], and the
//! [`Participants`] every resource with a lifecycle implements in its module.

use crate::partners::Partner;
use std::fmt::Display;

use crate::{Cloud, Error, Lifecycle, Move, PartnerState, Principal, ProgramRole, Reason};

/// Rule 3: a SUSPENDED partner starts nothing new.
pub fn partner_active(partner: &Partner) -> Result<(), Error> {
    match partner.state {
        PartnerState::Active => Ok(()),
        state => {
            Err(Error::rule(Reason::PartnerSuspended, format!("{} is {state} and starts nothing new", partner.id)))
        }
    }
}

/// Rule 3: only partners enrolled as `role` may `what`.
pub fn partner_role(partner: &Partner, role: ProgramRole, what: &str) -> Result<(), Error> {
    if partner.role == role {
        Ok(())
    } else {
        Err(Error::rule(
            Reason::RoleNotAllowed,
            format!("only a {role} may {what}, and {} is a {}", partner.id, partner.role),
        ))
    }
}

/// Rule 2: nothing joins resources of different clouds. `acting` is the partner whose cloud the
/// caller knows; the message does not say which cloud `other` is in (rule 9).
pub fn same_cloud(acting: (impl Display, Cloud), other: (impl Display, Cloud)) -> Result<(), Error> {
    let ((acting, acting_cloud), (other, other_cloud)) = (acting, other);
    if acting_cloud == other_cloud {
        Ok(())
    } else {
        Err(Error::rule(
            Reason::CrossCloud,
            format!("{other} is not in the {acting_cloud} cloud of {acting}; nothing crosses clouds"),
        ))
    }
}

/// Rule 1: a customer's tenant must not be enrolled as a partner of its cloud. `enrolled` is
/// whether it is, read under the tenant's lock.
pub fn tenant_not_a_partner(customer: impl Display, enrolled: bool) -> Result<(), Error> {
    if enrolled {
        Err(Error::rule(
            Reason::PartnerAsCustomer,
            format!("{customer}'s tenant is enrolled as a partner; a program partner cannot be a customer"),
        ))
    } else {
        Ok(())
    }
}

/// Rule 5: a move is made only from the states its resource's table allows (for the two-party
/// resources: only a waiting one is accepted or declined, only a live one ends). Returns the state
/// it leads to. One that expired says so (rule 15).
pub fn transition_allowed<S: Lifecycle>(state: S, transition: S::Transition, name: impl Display) -> Result<S, Error> {
    state.after(transition).ok_or_else(|| {
        let reason = if state.is_expired() { Reason::Expired } else { Reason::InvalidTransition };
        Error::rule(reason, format!("cannot {} {name}: it is {state}", transition.verb()))
    })
}

/// Rule 15: a waiting resource past its deadline (`expire_time`) is expired whether or not the
/// expiry engine has marked it yet: no move but the engine's may be made on it.
pub fn before_deadline<S: Lifecycle>(
    state: S,
    transition: S::Transition,
    expire_time: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    name: impl Display,
) -> Result<(), Error> {
    let waiting = state.after(S::Transition::EXPIRE).is_some();
    match expire_time {
        Some(deadline) if waiting && transition != S::Transition::EXPIRE && now >= deadline => Err(Error::rule(
            Reason::Expired,
            format!("cannot {} {name}: it expired at {}", transition.verb(), deadline.to_rfc3339()),
        )),
        _ => Ok(()),
    }
}

/// A resource with a lifecycle as rules 5 and 9 see it: who sees it, who moves it, and the
/// parties its changes record. One impl per resource, next to its other rules.
pub trait Participants {
    /// The moves the resource makes.
    type Transition: Move;
    /// Rule 9: whether `caller` may see it at all.
    fn may_see(&self, caller: &Principal) -> bool;
    /// Rule 5's "who": whether `caller` may make `transition`.
    fn may_transition(&self, caller: &Principal, transition: Self::Transition) -> Result<(), Error>;
    /// Who the resource names, as its changes record them.
    fn parties(&self) -> crate::change::Parties;
    /// What a role of `partner` would act on (rule 13): the customer the resource belongs to, for
    /// the resources a role reaches; `None` for the others.
    fn on_behalf(&self, _partner: crate::PartnerId) -> Option<crate::access::OnBehalf> {
        None
    }
}

/// Rule 9 for a resource read by id: `found` if the caller `may_see` it. Operators, who may see
/// everything, learn that it does not exist; anyone else is PERMISSION_DENIED whether or not it
/// does, so a name the caller may not read reveals nothing.
pub fn reveal<T>(
    caller: &Principal,
    name: impl Display,
    found: Option<T>,
    may_see: impl FnOnce(&T) -> bool,
) -> Result<T, Error> {
    match found {
        Some(row) if may_see(&row) => Ok(row),
        None if caller.is_operator() => Err(Error::not_found(name.to_string())),
        _ => Err(Error::denied(format!("{caller} may not see {name}"))),
    }
}

/// Rule 1 seen from the other side, for CreatePartner: a tenant holding an ACTIVE customer
/// relationship in the cloud cannot enrol there.
pub fn tenant_not_a_customer(holds_active_relationship: bool) -> Result<(), Error> {
    if holds_active_relationship {
        Err(Error::rule(
            Reason::PartnerAsCustomer,
            "tenant holds an ACTIVE customer relationship in this cloud and cannot enrol as a partner",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Facts for the rules' unit tests.

    use crate::customers::Customer;
    use crate::partners::Partner;
    use crate::{Cloud, CustomerId, PartnerId, PartnerState, ProgramRole, TenantId};

    pub fn partner(role: ProgramRole) -> Partner {
        Partner { id: PartnerId::generate(), cloud: Cloud::Global, role, state: PartnerState::Active }
    }

    pub fn suspended(partner: Partner) -> Partner {
        Partner { state: PartnerState::Suspended, ..partner }
    }

    pub fn in_cloud(partner: Partner, cloud: Cloud) -> Partner {
        Partner { cloud, ..partner }
    }

    pub fn customer(cloud: Cloud) -> Customer {
        Customer {
            id: CustomerId::generate(),
            cloud,
            tenant: TenantId(uuid::Uuid::new_v4()),
            created_by: "operator".into(),
        }
    }

    /// The reason of a FAILED_PRECONDITION, or what else the result was.
    pub fn reason<T: std::fmt::Debug>(result: Result<T, crate::Error>) -> String {
        match result {
            Err(crate::Error::FailedPrecondition { reason, .. }) => reason.as_str().to_owned(),
            other => format!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::{LinkState, PartnerId, Transition};

    #[test]
    fn suspended_partners_start_nothing() {
        let partner = partner(ProgramRole::DirectBillPartner);
        assert!(partner_active(&partner).is_ok());
        assert_eq!(reason(partner_active(&suspended(partner))), "PARTNER_SUSPENDED");
    }

    #[test]
    fn cross_cloud_messages_name_only_the_acting_partners_cloud() {
        let error = same_cloud(("partners/a", Cloud::Global), ("customers/b", Cloud::China)).err();
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("CROSS_CLOUD"), "{message}");
        assert!(message.contains("GLOBAL") && !message.contains("CHINA"), "{message}");
        assert!(same_cloud(("a", Cloud::Germany), ("b", Cloud::Germany)).is_ok());
    }

    #[test]
    fn a_missing_or_hidden_resource_looks_the_same_to_non_operators() {
        let partner = Principal::Partner(PartnerId::generate());
        let hidden = reveal(&partner, "resellerLinks/x", Some(1), |_| false);
        let missing = reveal(&partner, "resellerLinks/x", None::<i32>, |_| true);
        assert!(matches!(hidden, Err(Error::PermissionDenied { .. })));
        assert_eq!(hidden.err().map(|e| e.to_string()), missing.err().map(|e| e.to_string()));
        assert!(matches!(reveal(&Principal::Operator, "x", None::<i32>, |_| true), Err(Error::NotFound { .. })));
        assert_eq!(reveal(&partner, "x", Some(2), |_| true).ok(), Some(2));
    }

    #[test]
    fn transitions_follow_rule_5() {
        assert_eq!(transition_allowed(LinkState::Invited, Transition::Accept, "l").ok(), Some(LinkState::Active));
        assert_eq!(reason(transition_allowed(LinkState::Ended, Transition::End, "l")), "INVALID_TRANSITION");
        assert_eq!(reason(transition_allowed(LinkState::Expired, Transition::Accept, "l")), "EXPIRED");
    }

    #[test]
    fn a_waiting_resource_past_its_deadline_is_expired_to_every_move_but_the_engines() {
        let deadline = chrono::Utc::now();
        let late = Some(deadline);
        let early = deadline - chrono::Duration::seconds(1);
        assert_eq!(reason(before_deadline(LinkState::Invited, Transition::Accept, late, deadline, "l")), "EXPIRED");
        assert_eq!(reason(before_deadline(LinkState::Invited, Transition::End, late, deadline, "l")), "EXPIRED");
        assert!(before_deadline(LinkState::Invited, Transition::Expire, late, deadline, "l").is_ok());
        assert!(before_deadline(LinkState::Invited, Transition::Accept, late, early, "l").is_ok());
        assert!(before_deadline(LinkState::Active, Transition::End, late, deadline, "l").is_ok(), "only waiting ends");
        assert!(before_deadline(LinkState::Invited, Transition::Accept, None, deadline, "l").is_ok());
    }

    #[test]
    fn rule_1_holds_from_both_sides() {
        assert_eq!(reason(tenant_not_a_partner("customers/x", true)), "PARTNER_AS_CUSTOMER");
        assert!(tenant_not_a_partner("customers/x", false).is_ok());
        assert_eq!(reason(tenant_not_a_customer(true)), "PARTNER_AS_CUSTOMER");
        assert!(tenant_not_a_customer(false).is_ok());
    }
}
