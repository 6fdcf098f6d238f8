//! Support assignment handlers: RequestSupport, AcceptSupportAssignment,
//! DeclineSupportAssignment, EndSupportAssignment, GetSupportAssignment and
//! ListSupportAssignments.
//!
//! Multi-channel (rule 7): a partner with an ACTIVE relationship asks to support a subscription it
//! did not sell; the customer accepts or declines; either side ends. At most one assignment per
//! subscription is ACTIVE, enforced by a partial unique index so racing accepts leave one winner.
//! The assignment's partner, the subscription's customer and operators see an assignment.

use pc_api::channel::v1::{
    GetSupportAssignmentRequest, ListSupportAssignmentsRequest, ListSupportAssignmentsResponse, RequestSupportRequest,
    SupportAssignment,
};
use pc_domain::support_assignments as rules;
use pc_domain::{
    CustomerId, Error, Etag, PageKey, PartnerId, Principal, ResourceKind, SubscriptionId, SupportAssignmentId,
};
use pc_server::access;
use pc_server::convert::{ProtoEnum, filter_enum, list_page, optional_timestamp, timestamp};
use pc_server::create::Create;
use pc_server::lifecycle::{self, Transition};
use pc_store::{
    ConnectionTrait, Database, DatabaseTransaction, customer_relationships, customers,
    errors::is_unique_violation,
    locks::Lock,
    partners, subscriptions,
    support_assignments::{self, AssignmentFilter, Model},
};

pub fn to_proto(row: Model) -> Result<SupportAssignment, Error> {
    Ok(SupportAssignment {
        name: SupportAssignmentId(row.id).name(),
        subscription: SubscriptionId(row.subscription_id).name(),
        partner: PartnerId(row.partner_id).name(),
        state: row.state.to_proto(),
        accept_time: optional_timestamp(row.accept_time),
        end_time: optional_timestamp(row.end_time),
        expire_time: optional_timestamp(row.expire_time),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

/// Reads rule 7's grounds, locking in the order of pc_store::locks the partner, the relationship
/// and the subscription FOR SHARE: none of them can change until the caller commits.
async fn lock_support_grounds(
    db: &impl ConnectionTrait,
    partner_id: PartnerId,
    subscription_id: SubscriptionId,
    customer_id: CustomerId,
) -> Result<rules::Grounds, Error> {
    Ok(rules::Grounds {
        partner: partners::get_one_locked(db, partner_id, Lock::Share).await?.facts(),
        customer: customers::find(db, customer_id).await?.ok_or_else(|| Error::not_found(customer_id.name()))?.facts(),
        has_active_relationship: customer_relationships::lock_active(db, partner_id, customer_id).await?.is_some(),
        subscription: subscriptions::find_locked(db, subscription_id, Lock::Share)
            .await?
            .ok_or_else(|| Error::not_found(subscription_id.name()))?
            .facts(),
    })
}

pub async fn request_support(
    db: &Database,
    caller: Principal,
    request: RequestSupportRequest,
) -> Result<SupportAssignment, Error> {
    let create = Create::new(caller, "RequestSupport", &request)?;
    let subscription_id = SubscriptionId::parse("subscription", &request.subscription)?;
    let partner_id = PartnerId::parse("partner", &request.partner)?;
    caller.require_partner_or_operator(partner_id, "request support as this partner")?;

    let insert = async |txn: &DatabaseTransaction| {
        // A subscription's customer never changes: read without a lock to know what to lock.
        let subscription = subscriptions::find(txn, subscription_id).await?;
        // A partner without an ACTIVE relationship with the subscription's customer may not see it:
        // the same answer whether it exists or not, before any rule could describe it (rule 9).
        let denied = || Error::denied(format!("{partner_id} may not request support for {subscription_id}"));
        let subscription = match subscription {
            Some(subscription) => subscription,
            None if caller.is_operator() => return Err(Error::not_found(subscription_id.name())),
            None => return Err(denied()),
        };
        let grounds =
            lock_support_grounds(txn, partner_id, subscription_id, CustomerId(subscription.customer_id)).await?;
        rules::may_request(&caller, &grounds)?;
        rules::may_support(&grounds)?;
        // A lapsed request of the pair expires now rather than holding the pair (rule 15).
        let pair = support_assignments::of_pair(subscription_id, partner_id);
        pc_server::expiry::expire_lapsed::<SupportAssignments>(txn, pair).await?;
        let row =
            support_assignments::insert(txn, subscription_id, partner_id, db.deadline(ResourceKind::SupportAssignment))
                .await?;
        let parties = row.facts().parties(grounds.subscription.customer);
        Ok((row, parties))
    };
    let assignment = create.run(db, insert, to_proto).await?;
    tracing::info!(assignment = %assignment.name, "support requested");
    Ok(assignment)
}

/// AcceptSupportAssignment, DeclineSupportAssignment and EndSupportAssignment: the one lifecycle
/// ([`lifecycle::run`]) with the rules of a support assignment.
pub struct SupportAssignments;

impl lifecycle::Workflow for SupportAssignments {
    type Row = Model;
    /// The assignment and its subscription, whose customer hires and ends.
    type Parties = (rules::SupportAssignment, pc_domain::subscriptions::Subscription);
    /// An accept's grounds of rule 7 ([`lock_support_grounds`]); nothing for the others.
    type Grounds = Option<rules::Grounds>;

    async fn parties(txn: &DatabaseTransaction, assignment: &Model) -> Result<Self::Parties, Error> {
        let id = SubscriptionId(assignment.subscription_id);
        let subscription =
            subscriptions::find(txn, id).await?.ok_or_else(|| Error::internal(format!("{id} is missing")))?;
        Ok((assignment.facts(), subscription.facts()))
    }

    async fn lock_grounds(
        txn: &DatabaseTransaction,
        (assignment, subscription): &Self::Parties,
        transition: Transition,
    ) -> Result<Self::Grounds, Error> {
        if transition != Transition::Accept {
            return Ok(None);
        }
        Ok(Some(lock_support_grounds(txn, assignment.partner, subscription.id, subscription.customer).await?))
    }

    async fn check(txn: &DatabaseTransaction, _: &Model, _: Transition, grounds: Self::Grounds) -> Result<(), Error> {
        match &grounds {
            Some(grounds) => {
                rules::accept(grounds, support_assignments::has_active(txn, grounds.subscription.id).await?)
            }
            None => Ok(()),
        }
    }

    fn explain_write_error((_, subscription): &Self::Parties, error: Error) -> Error {
        // A concurrent accept of another partner won the partial unique index.
        if is_unique_violation(&error) { rules::one_active_already(subscription) } else { error }
    }
}

pub async fn get_support_assignment(
    db: &Database,
    caller: Principal,
    request: GetSupportAssignmentRequest,
) -> Result<SupportAssignment, Error> {
    let id = SupportAssignmentId::parse("name", &request.name)?;
    let found = support_assignments::read_with_subscription(db, id).await?;
    // Its parties (rule 9) or a role that reads the customer's assignments (rule 13).
    let facts = |(assignment, subscription): &(Model, subscriptions::Model)| (assignment.facts(), subscription.facts());
    let ((assignment, _), _) =
        access::to_read(db.reader(), &caller, ResourceKind::SupportAssignment, id, found, facts).await?;
    to_proto(assignment)
}

pub async fn list_support_assignments(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListSupportAssignmentsRequest,
) -> Result<ListSupportAssignmentsResponse, Error> {
    let filter = AssignmentFilter {
        viewer: caller,
        subscription: SubscriptionId::parse_optional("subscription", &request.subscription)?,
        partner: PartnerId::parse_optional("partner", &request.partner)?,
        state: filter_enum("state", request.state)?,
    };
    let fetch = |conn, page| async move { support_assignments::list(&conn, filter, page).await };
    list_page(db, &request, pages, &filter, fetch, to_proto).await
}
