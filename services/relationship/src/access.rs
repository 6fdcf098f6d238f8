//! CheckAccess (rule 13): whether a principal may do what a permission names to a resource (every
//! method on an existing resource but the partner directory's), and the path that decides it. It asks `pc_server::access`, through which the methods themselves
//! authorize, with the resource read as they read it, so the answer is the call's.

use pc_api::relationship::v1::{CheckAccessRequest, CheckAccessResponse};
use pc_domain::access::{Path, Permission};
use pc_domain::rules::Participants;
use pc_domain::{
    AdminMove, AdminRelationshipId, CustomerId, CustomerRelationshipId, Error, Move, Principal, ResellerLinkId,
    ResourceKind, SubscriptionId, SupportAssignmentId, TransferId, TransferMove, Transition,
};
use pc_server::access;
use pc_server::convert::ProtoEnum;
use pc_store::{
    Database, admin_relationships, customer_relationships, customers, reseller_links, subscriptions,
    support_assignments, transfers,
};

/// The moves a method makes on a two-party resource (the expiry engine's is no method's).
const TWO_PARTY: &[Transition] = &[Transition::Accept, Transition::Decline, Transition::End];

/// The move of `moves` whose verb `permission` names.
fn named<M: Move>(permission: Permission, moves: &[M]) -> Result<M, Error> {
    moves
        .iter()
        .copied()
        .find(|m| m.verb() == permission.verb)
        .ok_or_else(|| Error::internal(format!("{permission} names no move")))
}

/// The path to reading (`get`) or moving the resource with a lifecycle `found`, whose rules read
/// its `facts`.
async fn lifecycle_path<T, P: Participants>(
    db: &Database,
    principal: &Principal,
    permission: Permission,
    name: impl std::fmt::Display,
    found: Option<T>,
    facts: impl Fn(&T) -> P,
    moves: &[P::Transition],
) -> Result<Path, Error> {
    let reader = db.reader();
    Ok(match permission.verb {
        "get" => access::to_read(reader, principal, permission.kind, name, found, facts).await?.1,
        _ => {
            let facts = found.as_ref().map(facts);
            access::to_move(reader, principal, permission.kind, name, facts, named(permission, moves)?).await?.1
        }
    })
}

/// The path `principal` has to `permission` on the resource `name`, as the method decides it.
async fn path_of(db: &Database, principal: &Principal, permission: Permission, name: &str) -> Result<Path, Error> {
    let reader = db.reader();
    match permission.kind {
        ResourceKind::Customer => {
            let id = CustomerId::parse("resource", name)?;
            Ok(access::to_read_customer(reader, principal, id, customers::read(db, id).await?).await?.1)
        }
        ResourceKind::Subscription => {
            let id = SubscriptionId::parse("resource", name)?;
            let found = subscriptions::read(db, id).await?;
            Ok(access::to_subscription(reader, principal, permission.verb, id, found).await?.1)
        }
        ResourceKind::CustomerRelationship => {
            let id = CustomerRelationshipId::parse("resource", name)?;
            let found = customer_relationships::read(db, id).await?;
            lifecycle_path(db, principal, permission, id, found, customer_relationships::Model::facts, TWO_PARTY).await
        }
        ResourceKind::SupportAssignment => {
            let id = SupportAssignmentId::parse("resource", name)?;
            let found = support_assignments::read_with_subscription(db, id).await?;
            let facts = |(assignment, subscription): &(support_assignments::Model, subscriptions::Model)| {
                (assignment.facts(), subscription.facts())
            };
            lifecycle_path(db, principal, permission, id, found, facts, TWO_PARTY).await
        }
        ResourceKind::ResellerLink => {
            let id = ResellerLinkId::parse("resource", name)?;
            let found = reseller_links::read(db, id).await?;
            lifecycle_path(db, principal, permission, id, found, reseller_links::Model::facts, TWO_PARTY).await
        }
        ResourceKind::Transfer => {
            let id = TransferId::parse("resource", name)?;
            let moves = [TransferMove::Accept, TransferMove::Decline, TransferMove::Cancel];
            lifecycle_path(
                db,
                principal,
                permission,
                id,
                transfers::read(db, id).await?,
                transfers::Model::facts,
                &moves,
            )
            .await
        }
        ResourceKind::AdminRelationship => {
            let id = AdminRelationshipId::parse("resource", name)?;
            let found = admin_relationships::read(db, id).await?;
            let moves = [AdminMove::Approve, AdminMove::Decline, AdminMove::Terminate];
            lifecycle_path(db, principal, permission, id, found, admin_relationships::Model::facts, &moves).await
        }
        other => Err(Error::internal(format!("no permission of {other:?} is checked"))),
    }
}

pub async fn check_access(
    db: &Database,
    caller: Principal,
    request: CheckAccessRequest,
) -> Result<CheckAccessResponse, Error> {
    let principal = match request.principal.as_str() {
        "" => caller,
        named => Principal::parse(named)
            .map_err(|_| Error::invalid("principal", "must be `operator`, `partners/{id}` or `customers/{id}`"))?,
    };
    if principal != caller && !caller.is_operator() {
        return Err(Error::denied("only an operator may ask about another principal"));
    }
    let permission = Permission::parse("permission", &request.permission)?;
    if request.resource.split('/').next() != Some(permission.kind.collection()) {
        return Err(Error::invalid("resource", format!("must be a {} name", permission.kind.collection())));
    }
    match path_of(db, &principal, permission, &request.resource).await {
        Ok(path) => Ok(CheckAccessResponse {
            allowed: true,
            path: path.to_string(),
            admin_relationship: path.delegation().map(|id| id.name()).unwrap_or_default(),
            role: match path {
                Path::Delegated { role, .. } => role.to_proto(),
                _ => 0,
            },
            denial: String::new(),
        }),
        Err(Error::PermissionDenied { message, .. }) => {
            Ok(CheckAccessResponse { allowed: false, denial: message, ..Default::default() })
        }
        Err(other) => Err(other),
    }
}
