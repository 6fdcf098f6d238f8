//! Rules 9, 5 and 13 at the API edge: who may do what to which resource, and why. Each method on
//! an existing resource (but the partner directory's) authorizes here, and `CheckAccess` answers
//! through the very same functions, so the answer and the call cannot disagree. Roles reach a
//! customer, its relationships, subscriptions and support assignments.
//!
//! The resource's own rules decide first (rule 9's readers, rule 5's "who", as the domain states
//! them); only when they refuse a partner are its grants on the resource's customer read (its
//! ACTIVE admin relationships, [`pc_domain::access::decide`]): a caller its own rules let in costs
//! no query more. A write under a role holds its grant ([`hold`]): it locks the admin relationship
//! FOR SHARE after the rows it changes and checks it still grants, so a termination, an expiry or
//! the end of the customer relationship comes wholly before the write (which is then refused) or
//! after it.

use pc_domain::access::{self, OnBehalf, Path, Permission};
use pc_domain::rules::Participants;
use pc_domain::{AdminRelationshipState, CustomerId, Error, Move, Principal, ResourceKind, Role, SubscriptionId};
use pc_store::{ConnectionTrait, admin_relationships, customers, db::now, subscriptions};

/// The refusal every caller gets for a resource it may not see, whether or not it exists.
fn unseen(caller: &Principal, name: impl std::fmt::Display) -> Error {
    Error::denied(format!("{caller} may not see {name}"))
}

/// Rule 13's decision (`pc_domain::access::decide`) on `party`, the resource's own rules' answer,
/// reading the caller's grants on `target`'s customer only when those rules refused a partner.
pub async fn decide(
    db: &impl ConnectionTrait,
    caller: &Principal,
    permission: Permission,
    party: Result<Path, Error>,
    target: Option<OnBehalf>,
) -> Result<Path, Error> {
    let grants = match (caller, &party, &target) {
        (Principal::Partner(me), Err(Error::PermissionDenied { .. }), Some(target)) => {
            let active = admin_relationships::active_of_pair(db, *me, target.customer).await?;
            active.iter().map(admin_relationships::Model::grant).collect()
        }
        _ => Vec::new(),
    };
    access::decide(caller, permission, party, target.as_ref(), &grants, now())
}

/// A write that `path` allows holds it until it commits: a delegated one locks its admin
/// relationship FOR SHARE (`LockOrder::AdminRelationships`, after the rows the write changes) and
/// is refused unless it is still ACTIVE and before its end. Nothing is changed under a role after
/// the role ended.
pub async fn hold(db: &impl ConnectionTrait, permission: Permission, path: &Path) -> Result<(), Error> {
    let Some(id) = path.delegation() else { return Ok(()) };
    let grant = admin_relationships::lock_grant(db, id).await?;
    let holds =
        grant.filter(|row| row.state == AdminRelationshipState::Active).is_some_and(|row| row.grant().holds_at(now()));
    if holds {
        Ok(())
    } else {
        Err(Error::PermissionDenied {
            message: format!("{id} no longer grants {permission}"),
            permission: Some(permission.to_string()),
        })
    }
}

/// The resource `found` of `name` if `authorize` lets the caller at it; a missing one is NOT_FOUND
/// to operators and refused like a hidden one (naming `permission`) to anyone else.
async fn reveal<T>(
    caller: &Principal,
    permission: Permission,
    name: impl std::fmt::Display,
    found: Option<T>,
    authorize: impl AsyncFnOnce(&T) -> Result<Path, Error>,
) -> Result<(T, Path), Error> {
    match found {
        Some(row) => {
            let path = authorize(&row).await?;
            Ok((row, path))
        }
        None if caller.is_operator() => Err(Error::not_found(name.to_string())),
        None => Err(Error::PermissionDenied {
            message: unseen(caller, name).to_string(),
            permission: Some(permission.to_string()),
        }),
    }
}

fn on_behalf<P: Participants>(caller: &Principal, facts: &P) -> Option<OnBehalf> {
    match caller {
        Principal::Partner(me) => facts.on_behalf(*me),
        _ => None,
    }
}

/// Rules 9 and 13 for reading a resource with a lifecycle (GetCustomerRelationship,
/// GetSupportAssignment, ...): the row `found`, if its parties (its `facts`) see it or a role
/// reads it.
pub async fn to_read<T, P: Participants>(
    db: &impl ConnectionTrait,
    caller: &Principal,
    kind: ResourceKind,
    name: impl std::fmt::Display,
    found: Option<T>,
    facts: impl FnOnce(&T) -> P,
) -> Result<(T, Path), Error> {
    let permission = Permission::new(kind, "get");
    reveal(caller, permission, &name, found, async |row: &T| {
        let facts = facts(row);
        let party =
            if facts.may_see(caller) { Ok(Path::party(caller, &facts.parties())) } else { Err(unseen(caller, &name)) };
        decide(db, caller, permission, party, on_behalf(caller, &facts)).await
    })
    .await
}

/// Rules 9, 5 and 13 for a move of a resource with a lifecycle (`pc_server::lifecycle::run`):
/// a party that sees it and whose move it is, or a role that makes the move for the customer.
pub async fn to_move<P: Participants>(
    db: &impl ConnectionTrait,
    caller: &Principal,
    kind: ResourceKind,
    name: impl std::fmt::Display,
    facts: Option<P>,
    transition: P::Transition,
) -> Result<(P, Path), Error> {
    let permission = Permission::new(kind, transition.verb());
    reveal(caller, permission, &name, facts, async |facts: &P| {
        let party = if facts.may_see(caller) {
            facts.may_transition(caller, transition).map(|()| Path::party(caller, &facts.parties()))
        } else {
            Err(unseen(caller, &name))
        };
        decide(db, caller, permission, party, on_behalf(caller, facts)).await
    })
    .await
}

/// Rules 9 and 13 for GetCustomer: the customer itself, a partner that reads it (rule 9,
/// `pc_domain::customers::may_see`), or a partner with any role of it. A missing customer is
/// NOT_FOUND to those who would read it, refused to anyone else.
pub async fn to_read_customer(
    db: &impl ConnectionTrait,
    caller: &Principal,
    id: CustomerId,
    found: Option<customers::Model>,
) -> Result<(customers::Model, Path), Error> {
    let permission = Permission::new(ResourceKind::Customer, "get");
    let partner_sees = match (caller, &found) {
        (Principal::Partner(partner), Some(row)) => {
            let active = customers::active_relationships(db, id).await?;
            pc_domain::customers::partner_sees(*partner, &row.facts(), &active)
        }
        _ => false,
    };
    let sees = pc_domain::customers::may_see(caller, id, partner_sees);
    if found.is_none() && sees {
        return Err(Error::not_found(id.name()));
    }
    reveal(caller, permission, id, found, async |row: &customers::Model| {
        // A partner that reads it by rule 9 holds an ACTIVE relationship with it, or created it.
        let reader = match caller {
            Principal::Partner(me) if partner_sees => Some(*me),
            _ => None,
        };
        let parties = row.facts().parties().with(Role::Partner, reader);
        let party = if sees { Ok(Path::party(caller, &parties)) } else { Err(unseen(caller, id)) };
        let target = OnBehalf { customer: id, names_caller: false, outside_program: false };
        decide(db, caller, permission, party, Some(target)).await
    })
    .await
}

/// Rules 9, 13 and (for `update` and `cancel`) the subscription's own "who": its partner of
/// record, its billing partner or an operator changes it. `verb` is `get`, `update` or `cancel`;
/// `db` answers rule 9 (an ACTIVE support partner reads it).
pub async fn to_subscription(
    db: &impl ConnectionTrait,
    caller: &Principal,
    verb: &'static str,
    id: SubscriptionId,
    found: Option<subscriptions::Model>,
) -> Result<(subscriptions::Model, Path), Error> {
    let permission = Permission::new(ResourceKind::Subscription, verb);
    reveal(caller, permission, id, found, async |row: &subscriptions::Model| {
        let facts = row.facts();
        let partner_sees = match caller {
            Principal::Partner(me) => subscriptions::visible_to_partner(db, id, *me).await?,
            _ => false,
        };
        let party = if !pc_domain::subscriptions::may_see(caller, &facts, partner_sees) {
            Err(unseen(caller, id))
        } else if verb == "get" {
            Ok(())
        } else {
            pc_domain::subscriptions::may_change(caller, &facts, &format!("{verb} it"))
        };
        let transacts = matches!(caller, Principal::Partner(me) if facts.transacting_parties().any(|p| p == *me));
        // A partner that sees it without transacting it supports it (rule 9).
        let supporter = match caller {
            Principal::Partner(me) if partner_sees && !transacts => Some(*me),
            _ => None,
        };
        let party = party.map(|()| Path::party(caller, &facts.parties().with(Role::SupportPartner, supporter)));
        let target = OnBehalf {
            customer: facts.customer,
            names_caller: transacts,
            outside_program: facts.partner_of_record.is_none(),
        };
        decide(db, caller, permission, party, Some(target)).await
    })
    .await
}
