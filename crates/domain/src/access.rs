//! Rule 13: what an ACTIVE admin relationship's roles let a partner do for its customer, and the
//! answer to "why may this caller do that?".
//!
//! Every method on an existing resource asks for one [`Permission`] (`subscriptions.update`). The
//! resource's own rules (rule 9's readers, rule 5's "who") decide first and name the part the
//! caller plays ([`Path::Party`]); only when they refuse a partner does delegation count: one of
//! its grants on the resource's customer ([`Grant`], an ACTIVE admin relationship before its end)
//! holding a role whose row of the table ([`role_allows`]) names the permission for this resource
//! ([`Path::Delegated`]). [`decide`] is that order, for the methods and for `CheckAccess` alike,
//! so the two cannot disagree; a refusal names the permission that was missing (the ErrorInfo's
//! `permission`), never what the caller may not see.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::{AdminRelationshipId, AdminRole, CustomerId, Error, Parties, Principal, ResourceKind, Role};

/// What a method does to the resource it names: its collection and verb (`subscriptions.update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    pub kind: ResourceKind,
    pub verb: &'static str,
}

impl Permission {
    /// Every permission `CheckAccess` answers for: each method that names an existing resource,
    /// but those of the partner directory (public to read, an operator's to change).
    pub const ALL: &'static [Permission] = &[
        Self::new(ResourceKind::Customer, "get"),
        Self::new(ResourceKind::CustomerRelationship, "get"),
        Self::new(ResourceKind::CustomerRelationship, "accept"),
        Self::new(ResourceKind::CustomerRelationship, "decline"),
        Self::new(ResourceKind::CustomerRelationship, "end"),
        Self::new(ResourceKind::Subscription, "get"),
        Self::new(ResourceKind::Subscription, "update"),
        Self::new(ResourceKind::Subscription, "cancel"),
        Self::new(ResourceKind::SupportAssignment, "get"),
        Self::new(ResourceKind::SupportAssignment, "accept"),
        Self::new(ResourceKind::SupportAssignment, "decline"),
        Self::new(ResourceKind::SupportAssignment, "end"),
        Self::new(ResourceKind::ResellerLink, "get"),
        Self::new(ResourceKind::ResellerLink, "accept"),
        Self::new(ResourceKind::ResellerLink, "decline"),
        Self::new(ResourceKind::ResellerLink, "end"),
        Self::new(ResourceKind::Transfer, "get"),
        Self::new(ResourceKind::Transfer, "accept"),
        Self::new(ResourceKind::Transfer, "decline"),
        Self::new(ResourceKind::Transfer, "cancel"),
        Self::new(ResourceKind::AdminRelationship, "get"),
        Self::new(ResourceKind::AdminRelationship, "approve"),
        Self::new(ResourceKind::AdminRelationship, "decline"),
        Self::new(ResourceKind::AdminRelationship, "terminate"),
    ];

    pub const fn new(kind: ResourceKind, verb: &'static str) -> Self {
        Self { kind, verb }
    }

    /// A permission of [`Self::ALL`] by its name; anything else is INVALID_ARGUMENT on `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Error> {
        Self::ALL.iter().copied().find(|permission| permission.to_string() == text).ok_or_else(|| {
            let known: Vec<String> = Self::ALL.iter().map(ToString::to_string).collect();
            Error::invalid(field, format!("must be one of {}", known.join(", ")))
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.collection(), self.verb)
    }
}

/// What a role is asked to act on: the customer the resource belongs to, whether the resource
/// names the acting partner itself (a role never lets a partner answer for the customer what it
/// asked for), and whether it is a subscription bought outside the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnBehalf {
    pub customer: CustomerId,
    pub names_caller: bool,
    pub outside_program: bool,
}

/// Rule 13's table: whether `role` grants `permission` on a resource of the customer. Roles grant
/// what they name and nothing more; each line is one of docs/domain.md's rules 13.1 to 13.6.
pub fn role_allows(role: AdminRole, permission: Permission, target: &OnBehalf) -> bool {
    use AdminRole::*;
    use ResourceKind as Kind;
    match (permission.kind, permission.verb) {
        // 13.1: every role reads the customer itself.
        (Kind::Customer, "get") => true,
        // 13.2: the helpdesk and global admins read its relationships with partners.
        (Kind::CustomerRelationship, "get") => matches!(role, HelpdeskAgent | GlobalAdmin),
        // 13.3: billing readers, licence admins, support engineers and global admins read its
        // subscriptions from every channel, which rule 9 alone hides.
        (Kind::Subscription, "get") => matches!(role, BillingReader | LicenseAdmin | SupportEngineer | GlobalAdmin),
        // 13.4: the helpdesk, support engineers and global admins read its support assignments.
        (Kind::SupportAssignment, "get") => matches!(role, HelpdeskAgent | SupportEngineer | GlobalAdmin),
        // 13.5: licence and global admins change the quantity of a subscription it bought outside
        // the program; a program sale stays its partners' to change.
        (Kind::Subscription, "update") => matches!(role, LicenseAdmin | GlobalAdmin) && target.outside_program,
        // 13.6: global admins accept or decline relationships and support assignments for it,
        // never one that names the acting partner itself.
        (Kind::CustomerRelationship | Kind::SupportAssignment, "accept" | "decline") => {
            role == GlobalAdmin && !target.names_caller
        }
        _ => false,
    }
}

/// The roles that read a customer's resources of `kind` (rule 13 for `get`): what a List adds to
/// a partner's own view (rule 9), for the customers it holds one of them of.
pub fn roles_reading(kind: ResourceKind) -> Vec<AdminRole> {
    let any = OnBehalf { customer: CustomerId(uuid::Uuid::nil()), names_caller: false, outside_program: false };
    AdminRole::ALL.iter().copied().filter(|role| role_allows(*role, Permission::new(kind, "get"), &any)).collect()
}

/// An ACTIVE admin relationship of the caller with a customer, as rule 13 reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub relationship: AdminRelationshipId,
    pub customer: CustomerId,
    pub roles: Vec<AdminRole>,
    /// When access ends (an auto-extending one moves it on when it gets there).
    pub until: DateTime<Utc>,
    pub auto_extend: bool,
}

impl Grant {
    /// Whether it still grants at `now` (rule 15: past its end it is over, marked or not, unless it
    /// auto-extends).
    pub fn holds_at(&self, now: DateTime<Utc>) -> bool {
        self.auto_extend || now < self.until
    }
}

/// Why a caller may do what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// The vendor's operator, who may do anything.
    Operator,
    /// A part the caller plays in the resource (rule 9 or rule 5): `partner of record`, `customer`.
    Party(&'static str),
    /// An admin relationship of the caller with the resource's customer, by the role that grants.
    Delegated { relationship: AdminRelationshipId, role: AdminRole, until: DateTime<Utc> },
}

impl Path {
    /// The part `caller` plays among `parties` (the path of a caller its resource's rules let in).
    pub fn party(caller: &Principal, parties: &Parties) -> Self {
        if caller.is_operator() {
            return Self::Operator;
        }
        let me = caller.to_string();
        let role = parties.iter().find(|(_, name)| *name == me).map(|(role, _)| role);
        Self::Party(role.map_or("party", role_text))
    }

    /// The admin relationship a delegated path acts under, which the audit records.
    pub fn delegation(&self) -> Option<AdminRelationshipId> {
        match self {
            Self::Delegated { relationship, .. } => Some(*relationship),
            _ => None,
        }
    }
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Partner => "partner",
        Role::Creator => "creator",
        Role::PartnerOfRecord => "partner of record",
        Role::BillingPartner => "billing partner",
        Role::Provider => "provider",
        Role::Reseller => "reseller",
        Role::SupportPartner => "support partner",
        Role::Source => "source",
        Role::Target => "target",
        Role::PreviousBillingPartner => "previous billing partner",
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operator => f.write_str("operator"),
            Self::Party(role) => f.write_str(role),
            Self::Delegated { relationship, role, until } => {
                write!(f, "via {relationship} (ROLE_{role}, until {})", until.format("%Y-%m-%d"))
            }
        }
    }
}

/// The delegated path to `permission` on a resource of `target.customer`, if one of `grants`
/// holds at `now` with a role that allows it (the first such, in the catalogue's order).
pub fn delegated(permission: Permission, target: &OnBehalf, grants: &[Grant], now: DateTime<Utc>) -> Option<Path> {
    grants.iter().filter(|grant| grant.customer == target.customer && grant.holds_at(now)).find_map(|grant| {
        let role = grant.roles.iter().copied().find(|role| role_allows(*role, permission, target))?;
        Some(Path::Delegated { relationship: grant.relationship, role, until: grant.until })
    })
}

/// Rule 13's order: `party` is the resource's own rules' answer (rule 9, rule 5), and stands
/// unless it refused; a refused partner is let in by a grant that allows `permission` on
/// `target`; a refusal that stands names the permission. Other errors pass unchanged.
pub fn decide(
    caller: &Principal,
    permission: Permission,
    party: Result<Path, Error>,
    target: Option<&OnBehalf>,
    grants: &[Grant],
    now: DateTime<Utc>,
) -> Result<Path, Error> {
    match party {
        Err(Error::PermissionDenied { message, .. }) => {
            let through = match (caller, target) {
                (Principal::Partner(_), Some(target)) => delegated(permission, target, grants, now),
                _ => None,
            };
            through.ok_or_else(|| Error::PermissionDenied { message, permission: Some(permission.to_string()) })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AdminRelationshipId, PartnerId};
    use chrono::TimeDelta;

    const GET_SUBSCRIPTION: Permission = Permission::new(ResourceKind::Subscription, "get");
    const UPDATE_SUBSCRIPTION: Permission = Permission::new(ResourceKind::Subscription, "update");
    const ACCEPT_RELATIONSHIP: Permission = Permission::new(ResourceKind::CustomerRelationship, "accept");

    fn target(names_caller: bool, outside_program: bool) -> OnBehalf {
        OnBehalf { customer: CustomerId::generate(), names_caller, outside_program }
    }

    fn grant(target: &OnBehalf, roles: &[AdminRole], until: DateTime<Utc>) -> Grant {
        Grant {
            relationship: AdminRelationshipId::generate(),
            customer: target.customer,
            roles: roles.to_vec(),
            until,
            auto_extend: false,
        }
    }

    fn denied() -> Result<Path, Error> {
        Err(Error::denied("partners/x may not see subscriptions/y"))
    }

    #[test]
    fn permissions_are_named_by_collection_and_verb() {
        assert_eq!(UPDATE_SUBSCRIPTION.to_string(), "subscriptions.update");
        assert_eq!(Permission::parse("permission", "customerRelationships.accept").ok(), Some(ACCEPT_RELATIONSHIP));
        assert!(Permission::parse("permission", "subscriptions.delete").is_err());
    }

    #[test]
    fn roles_grant_what_they_name_and_nothing_more() {
        let program_sale = target(false, false);
        for role in AdminRole::ALL {
            assert!(role_allows(*role, Permission::new(ResourceKind::Customer, "get"), &program_sale));
            assert!(!role_allows(*role, UPDATE_SUBSCRIPTION, &program_sale), "{role} changes a program sale");
            assert!(!role_allows(*role, Permission::new(ResourceKind::Subscription, "cancel"), &program_sale));
        }
        assert!(role_allows(AdminRole::BillingReader, GET_SUBSCRIPTION, &program_sale));
        assert!(!role_allows(AdminRole::HelpdeskAgent, GET_SUBSCRIPTION, &program_sale));
        assert!(!role_allows(AdminRole::BillingReader, UPDATE_SUBSCRIPTION, &target(false, true)));
        assert!(role_allows(AdminRole::LicenseAdmin, UPDATE_SUBSCRIPTION, &target(false, true)));
        assert!(role_allows(AdminRole::GlobalAdmin, ACCEPT_RELATIONSHIP, &program_sale));
        assert!(!role_allows(AdminRole::GlobalAdmin, ACCEPT_RELATIONSHIP, &target(true, false)), "its own");
        assert!(!role_allows(AdminRole::SupportEngineer, ACCEPT_RELATIONSHIP, &program_sale));
    }

    #[test]
    fn a_party_needs_no_grant_and_a_refused_partner_passes_only_through_one_that_holds() {
        let now = Utc::now();
        let partner = Principal::Partner(PartnerId::generate());
        let on = target(false, false);
        let party = decide(&partner, GET_SUBSCRIPTION, Ok(Path::Party("partner of record")), Some(&on), &[], now);
        assert_eq!(party.ok(), Some(Path::Party("partner of record")));

        let reader = grant(&on, &[AdminRole::HelpdeskAgent, AdminRole::BillingReader], now + TimeDelta::days(1));
        let through = decide(&partner, GET_SUBSCRIPTION, denied(), Some(&on), std::slice::from_ref(&reader), now);
        let expected =
            Path::Delegated { relationship: reader.relationship, role: AdminRole::BillingReader, until: reader.until };
        assert_eq!(through.ok(), Some(expected));

        let ended = grant(&on, &[AdminRole::BillingReader], now);
        let late = decide(&partner, GET_SUBSCRIPTION, denied(), Some(&on), std::slice::from_ref(&ended), now);
        assert!(matches!(late, Err(Error::PermissionDenied { permission: Some(p), .. }) if p == "subscriptions.get"));
        let extending = Grant { auto_extend: true, ..ended };
        assert!(decide(&partner, GET_SUBSCRIPTION, denied(), Some(&on), &[extending], now).is_ok());

        let elsewhere = grant(&target(false, false), &[AdminRole::GlobalAdmin], now + TimeDelta::days(1));
        assert!(
            decide(&partner, GET_SUBSCRIPTION, denied(), Some(&on), &[elsewhere], now).is_err(),
            "another customer"
        );
        let customer = Principal::Customer(on.customer);
        assert!(decide(&customer, GET_SUBSCRIPTION, denied(), Some(&on), &[reader], now).is_err(), "only partners");
        let rule = decide(&partner, GET_SUBSCRIPTION, Err(Error::rule(crate::Reason::Expired, "x")), None, &[], now);
        assert!(matches!(rule, Err(Error::FailedPrecondition { .. })), "other refusals pass unchanged");
    }

    #[test]
    fn lists_add_the_customers_a_role_reads() {
        use AdminRole::*;
        assert_eq!(roles_reading(ResourceKind::Customer), AdminRole::ALL);
        assert_eq!(
            roles_reading(ResourceKind::Subscription),
            [LicenseAdmin, BillingReader, SupportEngineer, GlobalAdmin]
        );
        assert_eq!(roles_reading(ResourceKind::Transfer), []);
    }

    #[test]
    fn a_path_says_why() {
        let until = DateTime::parse_from_rfc3339("2027-05-01T10:00:00Z").map(|t| t.with_timezone(&Utc)).ok();
        let relationship = AdminRelationshipId::generate();
        let path = Path::Delegated { relationship, role: AdminRole::LicenseAdmin, until: until.unwrap_or_default() };
        assert_eq!(path.to_string(), format!("via {relationship} (ROLE_LICENSE_ADMIN, until 2027-05-01)"));
        let customer = CustomerId::generate();
        let parties = Parties::default().with(Role::Customer, Some(customer));
        assert_eq!(Path::party(&Principal::Customer(customer), &parties).to_string(), "customer");
        assert_eq!(Path::party(&Principal::Operator, &parties), Path::Operator);
    }
}
