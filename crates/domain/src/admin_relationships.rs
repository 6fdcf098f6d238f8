//! Admin relationships (states, moves, lifecycle table, roles, facts, rules), rule 12: a partner
//! with an ACTIVE relationship with a customer asks it for named admin roles for a bounded time;
//! the customer approves or declines; access ends by itself at its end time unless it
//! auto-extends, and either side may terminate it sooner (ending the customer relationship
//! terminates it too). Unanswered, the request expires after its window (rule 15). Not offered in
//! the US government cloud. The partner, the customer and operators see one.

use chrono::{DateTime, TimeDelta, Utc};

use crate::customers::Customer;
use crate::partners::Partner;
use crate::{
    AdminRelationshipId, Cloud, CustomerId, DisplayName, Error, Move, Parties, PartnerId, Principal, Reason, Role,
    Stamp, rules,
};

crate::states::stored_enum!(
    /// Where an admin relationship stands.
    AdminRelationshipState {
        ApprovalPending = "APPROVAL_PENDING",
        Active = "ACTIVE",
        Declined = "DECLINED",
        Expired = "EXPIRED",
        Terminated = "TERMINATED",
    }
);

crate::states::stored_enum!(
    /// The catalogue of admin roles a partner may ask a customer for (the proto's
    /// `AdminRelationship.Role`). What each grants is docs/domain.md's role table.
    AdminRole {
        HelpdeskAgent = "HELPDESK_AGENT",
        LicenseAdmin = "LICENSE_ADMIN",
        BillingReader = "BILLING_READER",
        SupportEngineer = "SUPPORT_ENGINEER",
        GlobalAdmin = "GLOBAL_ADMIN",
    }
);

/// The moves of an admin relationship: the customer approves or declines, either side
/// terminates, and the expiry engine expires one whose deadline passed or, for an ACTIVE one that
/// auto-extends, extends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminMove {
    Approve,
    Decline,
    Terminate,
    Expire,
    Extend,
}

impl Move for AdminMove {
    const EXPIRE: Self = Self::Expire;

    fn method_verb(self) -> &'static str {
        match self {
            Self::Approve => "Approve",
            Self::Decline => "Decline",
            Self::Terminate => "Terminate",
            Self::Expire => "Expire",
            Self::Extend => "Extend",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Decline => "decline",
            Self::Terminate => "terminate",
            Self::Expire => "expire",
            Self::Extend => "extend",
        }
    }

    fn stamps(self) -> Stamp {
        match self {
            Self::Approve => Stamp::AcceptTime,
            Self::Decline | Self::Terminate | Self::Expire => Stamp::EndTime,
            Self::Extend => Stamp::Extension,
        }
    }
}

// An ACTIVE one has a deadline too (its end time), so both live states are "waiting" to the
// expiry engine: at the deadline it expires, or, auto-extending, extends.
crate::states::lifecycle!(AdminRelationshipState by AdminMove {
    Approve: ApprovalPending => Active,
    Decline: ApprovalPending => Declined,
    Terminate: ApprovalPending | Active => Terminated,
    Expire: ApprovalPending | Active => Expired,
    Extend: Active => Active,
} live: ApprovalPending | Active
expired: Expired);

/// The longest display name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 50;
/// The shortest and longest access an admin relationship asks for, in days.
pub const DURATION_DAYS: std::ops::RangeInclusive<i64> = 1..=730;
/// How far each auto-extension moves the end time.
pub const EXTENSION: TimeDelta = TimeDelta::days(180);

/// An admin relationship as its rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRelationship {
    pub id: AdminRelationshipId,
    pub partner: PartnerId,
    pub customer: CustomerId,
    pub roles: Vec<AdminRole>,
    pub auto_extend: bool,
    pub state: AdminRelationshipState,
    /// ACTIVE: when access ends; before approval, unset.
    pub end_time: Option<DateTime<Utc>>,
}

impl AdminRelationship {
    /// Its partner and customer: who sees it and its changes (rule 9).
    pub fn parties(&self) -> Parties {
        Parties::default().with(Role::Customer, Some(self.customer)).with(Role::Partner, Some(self.partner))
    }
}

/// What a partner asks for, checked for its bounds (INVALID_ARGUMENT, naming the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub display_name: DisplayName,
    /// Each role once, in the catalogue's order.
    pub roles: Vec<AdminRole>,
    pub duration: TimeDelta,
    pub auto_extend: bool,
}

/// Rule 12's bounds on a request: a display name of at most 50 characters, at least one role and
/// none twice, a duration of whole days from 1 to 730, and no auto-extension of global admin.
/// `roles` are the catalogue's (`None` for one the catalogue does not hold); `duration` is in
/// seconds and nanoseconds, as the wire carries it.
pub fn ask(
    display_name: &str,
    roles: &[Option<AdminRole>],
    duration: Option<(i64, i32)>,
    auto_extend: bool,
) -> Result<Ask, Error> {
    const FIELD: &str = "admin_relationship";
    let display_name = DisplayName::parse(&format!("{FIELD}.display_name"), display_name)?;
    if display_name.as_str().chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(Error::invalid(
            format!("{FIELD}.display_name"),
            format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    let roles_field = format!("{FIELD}.roles");
    if roles.is_empty() {
        return Err(Error::invalid(roles_field, "must name at least one role"));
    }
    let mut asked = Vec::with_capacity(roles.len());
    for role in roles {
        let role = role.ok_or_else(|| Error::invalid(&roles_field, "must name roles of the catalogue"))?;
        if asked.contains(&role) {
            return Err(Error::invalid(&roles_field, format!("names {role} twice")));
        }
        asked.push(role);
    }
    asked.sort_by_key(|role| AdminRole::ALL.iter().position(|r| r == role));
    let duration_field = format!("{FIELD}.duration");
    let (seconds, nanos) = duration.ok_or_else(|| Error::invalid(&duration_field, "is required"))?;
    let days = seconds / 86_400;
    if nanos != 0 || seconds % 86_400 != 0 || !DURATION_DAYS.contains(&days) {
        return Err(Error::invalid(
            duration_field,
            format!("must be whole days, from {} to {} days", DURATION_DAYS.start(), DURATION_DAYS.end()),
        ));
    }
    if auto_extend && asked.contains(&AdminRole::GlobalAdmin) {
        return Err(Error::invalid(format!("{FIELD}.auto_extend"), "is not allowed with GLOBAL_ADMIN among the roles"));
    }
    Ok(Ask { display_name, roles: asked, duration: TimeDelta::days(days), auto_extend })
}

/// What requesting and approving an admin relationship decide on, read under the locks of
/// `pc_store::locks`: the partner (FOR SHARE), the customer, and whether their customer
/// relationship is ACTIVE (read FOR SHARE).
#[derive(Debug, Clone)]
pub struct Grounds {
    pub partner: Partner,
    pub customer: Customer,
    pub relationship_active: bool,
}

/// Rule 12 for RequestAdminRelationship and again for ApproveAdminRelationship: not offered in
/// the US government cloud; otherwise the partner is ACTIVE (rule 3), of the customer's cloud
/// (rule 2), and holds an ACTIVE relationship with it.
pub fn grantable(grounds: &Grounds) -> Result<(), Error> {
    let Grounds { partner, customer, relationship_active } = grounds;
    if partner.cloud == Cloud::UsGovernment {
        return Err(Error::rule(
            Reason::NotOfferedInCloud,
            format!("admin relationships are not offered in the {} cloud of {}", partner.cloud, partner.id),
        ));
    }
    rules::same_cloud((partner.id, partner.cloud), (customer.id, customer.cloud))?;
    rules::partner_active(partner)?;
    if !relationship_active {
        return Err(Error::rule(
            Reason::NoActiveRelationship,
            format!("{} holds no ACTIVE relationship with {}", partner.id, customer.id),
        ));
    }
    Ok(())
}

impl rules::Participants for AdminRelationship {
    type Transition = AdminMove;

    /// Rule 9: the partner, the customer and operators see an admin relationship.
    fn may_see(&self, caller: &Principal) -> bool {
        match caller {
            Principal::Operator => true,
            Principal::Partner(me) => *me == self.partner,
            Principal::Customer(me) => *me == self.customer,
        }
    }

    /// Rule 12's "who": the customer approves or declines; either side terminates; the expiry
    /// engine's moves no method makes.
    fn may_transition(&self, caller: &Principal, transition: AdminMove) -> Result<(), Error> {
        let allowed = match (caller, transition) {
            (Principal::Operator, _) => true,
            (_, AdminMove::Expire | AdminMove::Extend) => false,
            (Principal::Customer(me), _) => *me == self.customer,
            (Principal::Partner(me), AdminMove::Terminate) => *me == self.partner,
            (Principal::Partner(_), AdminMove::Approve | AdminMove::Decline) => false,
        };
        if allowed { Ok(()) } else { Err(Error::denied(format!("{caller} may not {} {}", transition.verb(), self.id))) }
    }

    fn parties(&self) -> Parties {
        AdminRelationship::parties(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lifecycle;
    use crate::ProgramRole;
    use rules::{Participants, test_support::*};

    const DAY: i64 = 86_400;

    fn invalid_field<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
        match result {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_request_is_bounded_in_name_roles_and_duration() {
        let roles = [Some(AdminRole::BillingReader)];
        let asked = ask("Billing desk", &roles, Some((90 * DAY, 0)), true);
        assert_eq!(asked.map(|a| (a.duration.num_days(), a.auto_extend)).ok(), Some((90, true)));
        assert!(ask(&"x".repeat(50), &roles, Some((DAY, 0)), false).is_ok());
        assert!(ask("a", &roles, Some((730 * DAY, 0)), false).is_ok());
        assert_eq!(
            invalid_field(ask(&"x".repeat(51), &roles, Some((DAY, 0)), false)),
            "admin_relationship.display_name"
        );
        assert_eq!(invalid_field(ask("", &roles, Some((DAY, 0)), false)), "admin_relationship.display_name");
        assert_eq!(invalid_field(ask("a", &[], Some((DAY, 0)), false)), "admin_relationship.roles");
        assert_eq!(invalid_field(ask("a", &[None], Some((DAY, 0)), false)), "admin_relationship.roles");
        let twice = [Some(AdminRole::LicenseAdmin), Some(AdminRole::LicenseAdmin)];
        assert_eq!(invalid_field(ask("a", &twice, Some((DAY, 0)), false)), "admin_relationship.roles");
        for duration in [None, Some((0, 0)), Some((731 * DAY, 0)), Some((DAY + 1, 0)), Some((DAY, 5)), Some((-DAY, 0))]
        {
            assert_eq!(invalid_field(ask("a", &roles, duration, false)), "admin_relationship.duration", "{duration:?}");
        }
    }

    #[test]
    fn global_admin_never_auto_extends() {
        let roles = [Some(AdminRole::HelpdeskAgent), Some(AdminRole::GlobalAdmin)];
        assert_eq!(invalid_field(ask("a", &roles, Some((DAY, 0)), true)), "admin_relationship.auto_extend");
        let asked = ask("a", &roles, Some((DAY, 0)), false).map(|a| a.roles);
        assert_eq!(asked.ok(), Some(vec![AdminRole::HelpdeskAgent, AdminRole::GlobalAdmin]));
    }

    fn grounds(cloud: Cloud) -> Grounds {
        Grounds {
            partner: in_cloud(partner(ProgramRole::DirectBillPartner), cloud),
            customer: customer(cloud),
            relationship_active: true,
        }
    }

    #[test]
    fn not_offered_in_the_us_government_cloud_and_never_across_clouds() {
        assert!(grantable(&grounds(Cloud::Global)).is_ok());
        assert!(grantable(&grounds(Cloud::China)).is_ok());
        assert_eq!(reason(grantable(&grounds(Cloud::UsGovernment))), "NOT_OFFERED_IN_CLOUD");
        let mut abroad = grounds(Cloud::Germany);
        abroad.customer.cloud = Cloud::Global;
        assert_eq!(reason(grantable(&abroad)), "CROSS_CLOUD");
    }

    #[test]
    fn it_rests_on_an_active_partner_with_an_active_relationship() {
        let unrelated = Grounds { relationship_active: false, ..grounds(Cloud::Global) };
        assert_eq!(reason(grantable(&unrelated)), "NO_ACTIVE_RELATIONSHIP");
        let mut suspended_partner = grounds(Cloud::Global);
        suspended_partner.partner = suspended(suspended_partner.partner);
        assert_eq!(reason(grantable(&suspended_partner)), "PARTNER_SUSPENDED");
    }

    #[test]
    fn the_customer_answers_either_side_terminates_only_the_engine_expires_or_extends() {
        let relationship = AdminRelationship {
            id: AdminRelationshipId::generate(),
            partner: PartnerId::generate(),
            customer: CustomerId::generate(),
            roles: vec![AdminRole::BillingReader],
            auto_extend: false,
            state: AdminRelationshipState::ApprovalPending,
            end_time: None,
        };
        let partner = Principal::Partner(relationship.partner);
        let customer = Principal::Customer(relationship.customer);
        let stranger = Principal::Partner(PartnerId::generate());
        assert!(relationship.may_transition(&customer, AdminMove::Approve).is_ok());
        assert!(relationship.may_transition(&customer, AdminMove::Decline).is_ok());
        assert!(relationship.may_transition(&partner, AdminMove::Approve).is_err());
        assert!(relationship.may_transition(&partner, AdminMove::Terminate).is_ok());
        assert!(relationship.may_transition(&customer, AdminMove::Terminate).is_ok());
        assert!(relationship.may_transition(&stranger, AdminMove::Terminate).is_err());
        assert!(relationship.may_transition(&customer, AdminMove::Extend).is_err());
        assert!(relationship.may_transition(&Principal::Operator, AdminMove::Approve).is_ok());
        assert!(relationship.may_see(&partner) && relationship.may_see(&customer) && !relationship.may_see(&stranger));
    }

    #[test]
    fn its_table_says_what_follows_what() {
        use AdminRelationshipState as S;
        assert_eq!(S::ApprovalPending.after(AdminMove::Approve), Some(S::Active));
        assert_eq!(S::Active.after(AdminMove::Approve), None);
        assert_eq!(S::Active.after(AdminMove::Extend), Some(S::Active));
        assert_eq!(S::ApprovalPending.after(AdminMove::Extend), None);
        assert_eq!(S::Active.after(AdminMove::Terminate), Some(S::Terminated));
        assert_eq!(S::Declined.after(AdminMove::Terminate), None);
        assert_eq!(S::waiting().collect::<Vec<_>>(), [S::ApprovalPending, S::Active]);
        assert!(S::Expired.is_expired() && !S::Terminated.is_live());
    }
}
