//! Rule 10: every rule that reads one row and changes another holds when the method that checks
//! and the method that changes run at the same moment (the lock protocol in
//! `crates/store/src/locks.rs`). Each test repeats one race on fresh rows for a bounded number of
//! rounds and seconds, fires the racing calls together behind a barrier, and after every round
//! reads the database and counts the rows that break the invariant. On SQLite (one writer) they
//! cannot break; on PostgreSQL they did, before the lock protocol (figures in the comments). The
//! last test runs them all again with the racing calls spread over three server processes.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use pc_api::{
    channel::v1::{
        CancelSubscriptionRequest, CreateSubscriptionRequest, ProductFamily, RequestSupportRequest, Subscription,
        UpdateSubscriptionRequest,
    },
    partner::v1::{CreateCustomerRequest, Customer, Partner, ProgramRole, SuspendPartnerRequest},
    relationship::v1::{
        AcceptResellerLinkRequest, EndCustomerRelationshipRequest, EndResellerLinkRequest, InviteResellerRequest,
        RequestCustomerRelationshipRequest,
    },
    types::v1::Cloud,
};
use pc_domain::{
    AssignmentState, Lifecycle, LinkState, PartnerState, RelationshipState, SubscriptionState, TransferState,
};
use pc_store::{
    admin_relationships, audit, customer_relationships, customers, partners, reseller_links, subscriptions,
    support_assignments, transfers,
};
use pc_tests::{Reply, TestApp, spawn_app};
use sea_orm::{AccessMode, DatabaseTransaction, EntityTrait, IsolationLevel, TransactionTrait};
use tokio::sync::Barrier;
use tonic::{Code, Status};
use uuid::Uuid;

/// At most this many rounds of one race...
const MAX_ROUNDS: usize = 30;
/// ...and no more rounds once this much time has passed.
const TIME_BUDGET: Duration = Duration::from_secs(20);

type Call = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

fn call<T: Send + 'static>(future: impl Future<Output = Result<T, Status>> + Send + 'static) -> Call {
    Box::pin(async move { future.await.map(drop) })
}

/// Starts every call at the same moment and returns their outcomes in order. A call that loses
/// its race may fail, but only with a status that names the rule or the conflict, or with
/// PERMISSION_DENIED when the race took away what let the caller see the resource.
async fn together(calls: Vec<Call>) -> Vec<Result<(), Status>> {
    let barrier = Arc::new(Barrier::new(calls.len()));
    let running: Vec<_> = calls
        .into_iter()
        .map(|call| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(running.len());
    for task in running {
        let outcome = task.await.expect("call task");
        if let Err(status) = &outcome {
            assert!(
                matches!(status.code(), Code::FailedPrecondition | Code::Aborted | Code::PermissionDenied),
                "a racing call failed with neither a rule nor a conflict: {status:?}"
            );
            pc_tests::assert_error_info(status);
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// Runs `round` on fresh rows until [`MAX_ROUNDS`] or [`TIME_BUDGET`], checks `broken` (the rows
/// that break the invariant, described) after each, and fails naming how many rounds broke it.
async fn race<R, C>(app: &TestApp, what: &str, mut round: R, broken: C)
where
    R: AsyncFnMut(&TestApp),
    C: AsyncFn(&DatabaseTransaction) -> Vec<String>,
{
    let start = Instant::now();
    let (mut rounds, mut broken_rounds, mut seen) = (0, 0, std::collections::BTreeSet::new());
    while rounds < MAX_ROUNDS && start.elapsed() < TIME_BUDGET {
        round(app).await;
        rounds += 1;
        // Broken rows stay broken: a round broke the invariant if it added any.
        let before = seen.len();
        let view = snapshot(app).await;
        seen.extend(broken(&view).await);
        view.rollback().await.expect("end the snapshot");
        broken_rounds += usize::from(seen.len() > before);
    }
    let first: Vec<_> = seen.into_iter().take(3).collect();
    assert_eq!(broken_rounds, 0, "{what}: {broken_rounds} of {rounds} rounds broke the invariant, first: {first:?}");
}

async fn all<E: EntityTrait>(view: &DatabaseTransaction) -> Vec<E::Model> {
    E::find().all(view).await.expect("read a table")
}

/// One consistent view of the database for a check. An invariant spans tables, read one query
/// each, and other calls may be writing meanwhile (the races across processes run at once): read
/// in separate snapshots, a subscription sold after its relationship's table was read looks sold
/// without one. So a check reads every table in one snapshot: a REPEATABLE READ transaction on
/// PostgreSQL; any SQLite transaction reads one.
async fn snapshot(app: &TestApp) -> DatabaseTransaction {
    let (isolation, access) = if app.on_postgres() {
        (Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
    } else {
        (None, None)
    };
    app.db.primary().begin_with_config(isolation, access).await.expect("a snapshot to check")
}

fn is_live_assignment(row: &support_assignments::Model) -> bool {
    row.state.is_live()
}

fn has_active_relationship(relationships: &[customer_relationships::Model], partner: Uuid, customer: Uuid) -> bool {
    relationships
        .iter()
        .any(|r| r.partner_id == partner && r.customer_id == customer && r.state == RelationshipState::Active)
}

/// Rule 6 and 8: every ACTIVE subscription sold through the program has an ACTIVE relationship
/// between its partner of record and its customer, and when a reseller sold it, an ACTIVE link
/// between the billing provider and that reseller.
async fn subscriptions_without_their_channel(view: &DatabaseTransaction) -> Vec<String> {
    let relationships = all::<customer_relationships::Entity>(view).await;
    let links = all::<reseller_links::Entity>(view).await;
    let mut broken = Vec::new();
    for sub in all::<subscriptions::Entity>(view).await.into_iter().filter(|s| s.state == SubscriptionState::Active) {
        let (Some(seller), Some(biller)) = (sub.partner_of_record_id, sub.billing_partner_id) else { continue };
        if !has_active_relationship(&relationships, seller, sub.customer_id) {
            broken.push(format!("ACTIVE subscription {} without an ACTIVE relationship", sub.id));
        }
        let linked =
            links.iter().any(|l| l.provider_id == biller && l.reseller_id == seller && l.state == LinkState::Active);
        if seller != biller && !linked {
            broken.push(format!("ACTIVE subscription {} billed through a link that is not ACTIVE", sub.id));
        }
    }
    broken
}

/// Rules 7 and 8: a REQUESTED or ACTIVE support assignment is on an ACTIVE subscription, and its
/// partner holds an ACTIVE relationship with the subscription's customer.
async fn assignments_without_their_grounds(view: &DatabaseTransaction) -> Vec<String> {
    let relationships = all::<customer_relationships::Entity>(view).await;
    let subscriptions = all::<subscriptions::Entity>(view).await;
    let mut broken = Vec::new();
    for assignment in all::<support_assignments::Entity>(view).await.into_iter().filter(is_live_assignment) {
        let sub = subscriptions.iter().find(|s| s.id == assignment.subscription_id).expect("its subscription");
        if sub.state != SubscriptionState::Active {
            broken.push(format!("{} assignment {} on a {} subscription", assignment.state, assignment.id, sub.state));
        }
        if !has_active_relationship(&relationships, assignment.partner_id, sub.customer_id) {
            broken.push(format!("{} assignment {} without an ACTIVE relationship", assignment.state, assignment.id));
        }
    }
    broken
}

/// Rule 3: a SUSPENDED partner starts nothing new. Whatever names a suspended partner was created
/// or accepted before its suspension was stamped (its `update_time`; nothing else changes these
/// partners): the suspension locks the partner's row before it reads the clock, and everything a
/// partner starts holds that row locked from its check until it commits.
async fn started_after_suspension(view: &DatabaseTransaction) -> Vec<String> {
    let suspended: Vec<_> =
        all::<partners::Entity>(view).await.into_iter().filter(|p| p.state == PartnerState::Suspended).collect();
    let suspended_at = |id: Uuid| suspended.iter().find(|p| p.id == id).map(|p| p.update_time);
    let after = |parties: &[Option<Uuid>], times: &[Option<DateTime<Utc>>]| {
        parties.iter().flatten().filter_map(|p| suspended_at(*p)).any(|at| times.iter().flatten().any(|t| *t > at))
    };
    let mut broken = Vec::new();
    for link in all::<reseller_links::Entity>(view).await {
        if after(&[Some(link.provider_id), Some(link.reseller_id)], &[Some(link.create_time), link.accept_time]) {
            broken.push(format!("reseller link {} started after a party's suspension", link.id));
        }
    }
    for rel in all::<customer_relationships::Entity>(view).await {
        if after(&[Some(rel.partner_id), rel.indirect_provider_id], &[Some(rel.create_time), rel.accept_time]) {
            broken.push(format!("customer relationship {} started after a party's suspension", rel.id));
        }
    }
    for sub in all::<subscriptions::Entity>(view).await {
        if after(&[sub.partner_of_record_id, sub.billing_partner_id], &[Some(sub.create_time)]) {
            broken.push(format!("subscription {} sold after a party's suspension", sub.id));
        }
    }
    for assignment in all::<support_assignments::Entity>(view).await {
        if after(&[Some(assignment.partner_id)], &[Some(assignment.create_time), assignment.accept_time]) {
            broken.push(format!("support assignment {} started after its partner's suspension", assignment.id));
        }
    }
    // More licences are new business: a raise is dated by its audit event.
    let subscriptions = all::<subscriptions::Entity>(view).await;
    for event in all::<audit::Entity>(view).await.into_iter().filter(|e| e.action == "UpdateSubscription") {
        let change = audit::decode(&event).expect("a stored change");
        let quantity = change.fields.iter().find(|(field, _)| field == "quantity").map(|(_, delta)| delta);
        let number = |value: Option<&String>| value.and_then(|text| text.parse::<i64>().ok());
        let raised = quantity.is_some_and(|delta| number(delta.to.as_ref()) > number(delta.from.as_ref()));
        let sub = subscriptions.iter().find(|s| format!("subscriptions/{}", s.id) == event.resource).expect("its row");
        if raised && after(&[sub.partner_of_record_id, sub.billing_partner_id], &[Some(event.create_time)]) {
            broken.push(format!("subscription {} raised after a party's suspension", sub.id));
        }
    }
    for created in all::<customers::Entity>(view).await {
        let creator = created.created_by.strip_prefix("partners/").and_then(|id| Uuid::parse_str(id).ok());
        if after(&[creator], &[Some(created.create_time)]) {
            broken.push(format!("customer {} created after its creator's suspension", created.id));
        }
    }
    // A partner asks for admin roles, and the customer grants them, only while it is ACTIVE.
    for admin in all::<admin_relationships::Entity>(view).await {
        if after(&[Some(admin.partner_id)], &[Some(admin.create_time), admin.accept_time]) {
            broken
                .push(format!("admin relationship {} asked for or approved after its partner's suspension", admin.id));
        }
    }
    // The target asks and takes over; the source hands over (rule 3 on both).
    for transfer in all::<transfers::Entity>(view).await {
        let parties =
            [Some(transfer.source_partner_id), Some(transfer.target_partner_id), transfer.indirect_provider_id];
        if after(&[Some(transfer.target_partner_id)], &[Some(transfer.create_time)])
            || after(&parties, &[transfer.accept_time])
        {
            broken.push(format!("transfer {} asked for or accepted after a party's suspension", transfer.id));
        }
    }
    broken
}

/// Rules 3 and 6: a relationship billed through a provider is asked for and accepted only while
/// the reseller's link with that provider is ACTIVE.
async fn relationships_after_their_link_ended(view: &DatabaseTransaction) -> Vec<String> {
    let links = all::<reseller_links::Entity>(view).await;
    let mut broken = Vec::new();
    for rel in all::<customer_relationships::Entity>(view).await {
        let Some(provider) = rel.indirect_provider_id else { continue };
        let ended = links.iter().filter(|l| l.provider_id == provider && l.reseller_id == rel.partner_id);
        for end in ended.filter_map(|l| l.end_time) {
            if rel.create_time > end || rel.accept_time.is_some_and(|t| t > end) {
                broken.push(format!("customer relationship {} started after its billing link ended", rel.id));
            }
        }
    }
    broken
}

fn sale(seller: &Partner, customer: &Customer) -> CreateSubscriptionRequest {
    CreateSubscriptionRequest {
        subscription: Some(Subscription {
            customer: customer.name.clone(),
            offer_id: "azure-plan".into(),
            product_family: ProductFamily::Azure as i32,
            quantity: 1,
            partner_of_record: seller.name.clone(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

fn support(subscription: &Subscription, partner: &Partner) -> RequestSupportRequest {
    RequestSupportRequest {
        subscription: subscription.name.clone(),
        partner: partner.name.clone(),
        request_id: String::new(),
    }
}

/// The operator suspends `partner`.
fn suspend(app: &TestApp, partner: &Partner) -> Call {
    let (mut client, name) = (app.partners(), partner.name.clone());
    call(async move { client.suspend_partner(SuspendPartnerRequest { name, etag: String::new() }).await })
}

/// The customer ends the relationship `name`.
fn end_relationship(app: &TestApp, customer: &Customer, name: &str) -> Call {
    let (mut client, name) = (app.relationships_as(Some(&customer.name)), name.to_owned());
    call(
        async move { client.end_customer_relationship(EndCustomerRelationshipRequest { name, etag: String::new() }).await },
    )
}

fn sell(app: &TestApp, seller: &Partner, customer: &Customer) -> Call {
    let (mut client, request) = (app.channel_as(Some(&seller.name)), sale(seller, customer));
    call(async move { client.create_subscription(request).await })
}

fn request_support(app: &TestApp, subscription: &Subscription, partner: &Partner) -> Call {
    let (mut client, request) = (app.channel_as(Some(&partner.name)), support(subscription, partner));
    call(async move { client.request_support(request).await })
}

/// `supporter` asks to support `subscription` now; the call returned has `customer` accept it.
async fn requested_support_accepted(
    app: &TestApp,
    customer: &Customer,
    subscription: &Subscription,
    supporter: &Partner,
) -> Call {
    let requested =
        app.channel_as(Some(&supporter.name)).request_support(support(subscription, supporter)).await.reply();
    let (mut client, name) = (app.channel_as(Some(&customer.name)), requested.name);
    call(async move {
        let accept = pc_api::channel::v1::AcceptSupportAssignmentRequest { name, etag: String::new() };
        client.accept_support_assignment(accept).await
    })
}

/// A customer created by `partner`, with an ACTIVE relationship (through `provider` for a reseller).
async fn related_customer(app: &TestApp, partner: &Partner, provider: Option<&Partner>) -> (Customer, String) {
    let customer = app.customer_by(&partner.name, Cloud::Global).await;
    let relationship = app.relate(partner, &customer, provider).await;
    (customer, relationship.name)
}

#[tokio::test]
async fn selling_through_a_reseller_racing_the_end_of_its_link_never_leaves_a_sale_without_a_link() {
    sale_through_a_reseller_vs_end_of_its_link(&spawn_app().await).await;
}

async fn sale_through_a_reseller_vs_end_of_its_link(app: &TestApp) {
    let round = async |app: &TestApp| {
        let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
        let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        let link = app.link(&provider, &reseller).await;
        let (customer, _) = related_customer(app, &reseller, Some(&provider)).await;
        let mut calls: Vec<Call> = (0..4).map(|_| sell(app, &reseller, &customer)).collect();
        let mut ending = app.relationships_as(Some(&provider.name));
        calls.push(call(async move {
            ending.end_reseller_link(EndResellerLinkRequest { name: link.name, etag: String::new() }).await
        }));
        together(calls).await;
    };
    race(app, "CreateSubscription vs EndResellerLink", round, subscriptions_without_their_channel).await;
}

#[tokio::test]
async fn selling_racing_the_end_of_the_relationship_never_leaves_a_sale_without_a_relationship() {
    sale_vs_end_of_the_relationship(&spawn_app().await).await;
}

async fn sale_vs_end_of_the_relationship(app: &TestApp) {
    let round = async |app: &TestApp| {
        let seller = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let (customer, relationship) = related_customer(app, &seller, None).await;
        let mut calls: Vec<Call> = (0..4).map(|_| sell(app, &seller, &customer)).collect();
        calls.push(end_relationship(app, &customer, &relationship));
        together(calls).await;
    };
    race(app, "CreateSubscription vs EndCustomerRelationship", round, subscriptions_without_their_channel).await;
}

/// A customer of `seller` with one ACTIVE subscription from it, and `supporter`, another direct
/// partner with an ACTIVE relationship with the same customer.
async fn supportable(app: &TestApp) -> (Customer, Subscription, Partner, String) {
    let seller = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let (customer, _) = related_customer(app, &seller, None).await;
    let subscription = app.sell(&seller, &customer, "dynamics-365-sales", ProductFamily::Dynamics).await;
    let relationship = app.relate(&supporter, &customer, None).await;
    (customer, subscription, supporter, relationship.name)
}

#[tokio::test]
async fn requesting_support_racing_the_end_of_the_relationship_never_leaves_a_live_request() {
    support_request_vs_end_of_the_relationship(&spawn_app().await).await;
}

async fn support_request_vs_end_of_the_relationship(app: &TestApp) {
    let round = async |app: &TestApp| {
        let (customer, subscription, supporter, relationship) = supportable(app).await;
        together(vec![
            request_support(app, &subscription, &supporter),
            end_relationship(app, &customer, &relationship),
        ])
        .await;
    };
    race(app, "RequestSupport vs EndCustomerRelationship", round, assignments_without_their_grounds).await;
}

#[tokio::test]
async fn requesting_support_racing_a_cancellation_never_leaves_a_live_request_on_a_cancelled_subscription() {
    support_request_vs_cancellation(&spawn_app().await).await;
}

async fn support_request_vs_cancellation(app: &TestApp) {
    let round = async |app: &TestApp| {
        let (_, subscription, supporter, _) = supportable(app).await;
        let (mut operator, name) = (app.channel(), subscription.name.clone());
        let cancel = call(async move {
            operator.cancel_subscription(CancelSubscriptionRequest { name, etag: String::new() }).await
        });
        together(vec![request_support(app, &subscription, &supporter), cancel]).await;
    };
    race(app, "RequestSupport vs CancelSubscription", round, assignments_without_their_grounds).await;
}

#[tokio::test]
async fn accepting_support_racing_the_end_of_the_relationship_never_leaves_an_active_assignment() {
    support_acceptance_vs_end_of_the_relationship(&spawn_app().await).await;
}

async fn support_acceptance_vs_end_of_the_relationship(app: &TestApp) {
    let round = async |app: &TestApp| {
        let (customer, subscription, supporter, relationship) = supportable(app).await;
        let accept = requested_support_accepted(app, &customer, &subscription, &supporter).await;
        together(vec![accept, end_relationship(app, &customer, &relationship)]).await;
    };
    race(app, "AcceptSupportAssignment vs EndCustomerRelationship", round, assignments_without_their_grounds).await;
}

/// Rule 14: a subscription's change names its ACTIVE support partner as a party exactly when the
/// assignment was accepted before the change (both stamp their time under the subscription's lock,
/// which the accept shares and the update holds exclusively, so their times order them).
async fn changes_naming_the_wrong_support_partner(view: &DatabaseTransaction) -> Vec<String> {
    let assignments = all::<support_assignments::Entity>(view).await;
    let mut broken = Vec::new();
    let changes_of_subscriptions = ["UpdateSubscription", "CancelSubscription"];
    for event in all::<audit::Entity>(view).await.into_iter().filter(|e| changes_of_subscriptions.contains(&&*e.action))
    {
        let change = audit::decode(&event).expect("a stored change");
        // A cancellation ends the assignment in its own transaction, after its own change: ACTIVE
        // until then.
        let supporting = assignments.iter().find(|assignment| {
            event.resource == format!("subscriptions/{}", assignment.subscription_id)
                && assignment.accept_time.is_some_and(|accepted| accepted < event.create_time)
                && assignment.end_time.is_none_or(|ended| ended >= event.create_time)
        });
        let named = change.parties.get(pc_domain::Role::SupportPartner).map(str::to_owned);
        if named != supporting.map(|assignment| format!("partners/{}", assignment.partner_id)) {
            broken.push(format!("{} of {} names support partner {named:?}", event.action, event.resource));
        }
    }
    broken
}

#[tokio::test]
async fn a_resize_racing_the_acceptance_of_support_names_the_support_partner_as_it_stood() {
    resize_vs_support_acceptance(&spawn_app().await).await;
}

async fn resize_vs_support_acceptance(app: &TestApp) {
    let resize = |mut operator: ChannelClient, name: String| async move {
        let subscription = Some(Subscription { name, quantity: 2, ..Default::default() });
        let update_mask = Some(prost_types::FieldMask { paths: vec!["quantity".into()] });
        operator.update_subscription(UpdateSubscriptionRequest { subscription, update_mask }).await
    };
    subscription_change_vs_support_acceptance(app, "UpdateSubscription vs AcceptSupportAssignment", resize).await;
}

#[tokio::test]
async fn a_cancellation_racing_the_acceptance_of_support_names_the_support_partner_as_it_stood() {
    cancellation_vs_support_acceptance(&spawn_app().await).await;
}

async fn cancellation_vs_support_acceptance(app: &TestApp) {
    let cancel = |mut operator: ChannelClient, name: String| async move {
        operator.cancel_subscription(CancelSubscriptionRequest { name, etag: String::new() }).await
    };
    subscription_change_vs_support_acceptance(app, "CancelSubscription vs AcceptSupportAssignment", cancel).await;
}

type ChannelClient = pc_api::channel::v1::channel_service_client::ChannelServiceClient<pc_tests::AuthChannel>;

/// An operator's `change` of a subscription races the customer accepting a partner's support of
/// it: the change must name the support partner exactly when the acceptance came first.
async fn subscription_change_vs_support_acceptance<F>(
    app: &TestApp,
    what: &str,
    change: impl Fn(ChannelClient, String) -> F,
) where
    F: Future<Output = Result<tonic::Response<Subscription>, Status>> + Send + 'static,
{
    // The change starts a little later each round, so that both orders of the two happen.
    let mut delay = 0;
    let round = async |app: &TestApp| {
        delay = (delay + 2) % 24;
        let wait = Duration::from_millis(delay);
        let (customer, subscription, supporter, _) = supportable(app).await;
        let accept = requested_support_accepted(app, &customer, &subscription, &supporter).await;
        let change = change(app.channel(), subscription.name.clone());
        let change = call(async move {
            tokio::time::sleep(wait).await;
            change.await
        });
        together(vec![accept, change]).await;
    };
    race(app, what, round, changes_naming_the_wrong_support_partner).await;
}

#[tokio::test]
async fn what_a_partner_starts_racing_its_suspension_is_never_dated_after_it() {
    anything_started_vs_suspension(&spawn_app().await).await;
}

async fn anything_started_vs_suspension(app: &TestApp) {
    let round = async |app: &TestApp| {
        let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
        let invited = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        let accepting = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        let direct = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let (customer, _) = related_customer(app, &direct, None).await;
        let prospect = app.customer_by("operator", Cloud::Global).await;
        let pending = app.invite(&provider, &accepting).await;
        let answering = app.customer_by(&direct.name, Cloud::Global).await;
        let asked = app.ask(&direct, &answering, None).await;
        let sold = app.sell(&direct, &customer, "office-365-e3", ProductFamily::Productivity).await;
        let bought_elsewhere = app.bought_elsewhere(&customer, 1).await;
        let roles = [pc_api::relationship::v1::admin_relationship::Role::BillingReader];
        let pending_admin = app.ask_admin(&direct, &customer, &roles).await;

        let (mut inviter, invite) = (
            app.relationships_as(Some(&provider.name)),
            InviteResellerRequest {
                provider: provider.name.clone(),
                reseller: invited.name.clone(),
                ..Default::default()
            },
        );
        let (mut acceptor, accept) = (
            app.relationships_as(Some(&accepting.name)),
            AcceptResellerLinkRequest { name: pending.name, etag: String::new() },
        );
        let (mut requester, ask) = (
            app.relationships_as(Some(&direct.name)),
            RequestCustomerRelationshipRequest {
                partner: direct.name.clone(),
                customer: prospect.name.clone(),
                ..Default::default()
            },
        );
        let (mut creator, create) = (
            app.partners_as(Some(&direct.name)),
            CreateCustomerRequest { customer: Some(pc_tests::new_customer(Cloud::Global)), request_id: String::new() },
        );
        let (mut answerer, answer) = (
            app.relationships_as(Some(&answering.name)),
            pc_api::relationship::v1::AcceptCustomerRelationshipRequest { name: asked.name, etag: String::new() },
        );
        let (mut raiser, raise) = (
            app.channel_as(Some(&direct.name)),
            UpdateSubscriptionRequest {
                subscription: Some(Subscription {
                    name: sold.name.clone(),
                    quantity: sold.quantity + 1,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["quantity".into()] }),
            },
        );
        let (mut admin_requester, admin_request) =
            (app.relationships_as(Some(&direct.name)), pc_tests::admin_request(&direct, &customer, &roles));
        let (mut approver, approve) = (
            app.relationships_as(Some(&customer.name)),
            pc_api::relationship::v1::ApproveAdminRelationshipRequest { name: pending_admin.name, etag: String::new() },
        );
        together(vec![
            call(async move { admin_requester.request_admin_relationship(admin_request).await }),
            call(async move { approver.approve_admin_relationship(approve).await }),
            call(async move { answerer.accept_customer_relationship(answer).await }),
            call(async move { raiser.update_subscription(raise).await }),
            request_support(app, &bought_elsewhere, &direct),
            call(async move { inviter.invite_reseller(invite).await }),
            call(async move { acceptor.accept_reseller_link(accept).await }),
            call(async move { requester.request_customer_relationship(ask).await }),
            call(async move { creator.create_customer(create).await }),
            sell(app, &direct, &customer),
            suspend(app, &provider),
            suspend(app, &direct),
        ])
        .await;
    };
    race(app, "starting anything vs SuspendPartner", round, started_after_suspension).await;
}

#[tokio::test]
async fn asking_through_a_provider_racing_the_end_of_the_link_is_never_dated_after_it() {
    asking_through_a_provider_vs_end_of_the_link(&spawn_app().await).await;
}

async fn asking_through_a_provider_vs_end_of_the_link(app: &TestApp) {
    let round = async |app: &TestApp| {
        let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
        let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        let link = app.link(&provider, &reseller).await;
        let asked = app.customer_by(&reseller.name, Cloud::Global).await;
        let answering = app.customer_by(&reseller.name, Cloud::Global).await;
        let ask = |customer: &Customer| RequestCustomerRelationshipRequest {
            partner: reseller.name.clone(),
            customer: customer.name.clone(),
            indirect_provider: provider.name.clone(),
            ..Default::default()
        };
        let pending = app.ask(&reseller, &answering, Some(&provider)).await;
        let (mut requester, request) = (app.relationships_as(Some(&reseller.name)), ask(&asked));
        let (mut customer, accept) = (
            app.relationships_as(Some(&answering.name)),
            pc_api::relationship::v1::AcceptCustomerRelationshipRequest { name: pending.name, etag: String::new() },
        );
        let (mut ender, end) = (
            app.relationships_as(Some(&provider.name)),
            EndResellerLinkRequest { name: link.name, etag: String::new() },
        );
        together(vec![
            call(async move { requester.request_customer_relationship(request).await }),
            call(async move { customer.accept_customer_relationship(accept).await }),
            call(async move { ender.end_reseller_link(end).await }),
        ])
        .await;
    };
    race(app, "Request/AcceptCustomerRelationship vs EndResellerLink", round, relationships_after_their_link_ended)
        .await;
}

/// Rule 1: no tenant is both an enrolled partner and a customer with an ACTIVE relationship in
/// one cloud.
async fn partners_who_are_customers(view: &DatabaseTransaction) -> Vec<String> {
    let partners = all::<partners::Entity>(view).await;
    let customers = all::<customers::Entity>(view).await;
    let mut broken = Vec::new();
    for rel in
        all::<customer_relationships::Entity>(view).await.into_iter().filter(|r| r.state == RelationshipState::Active)
    {
        let customer = customers.iter().find(|c| c.id == rel.customer_id).expect("its customer");
        if partners.iter().any(|p| p.cloud == customer.cloud && p.tenant_id == customer.tenant_id) {
            broken.push(format!("customer {} is an enrolled partner with an ACTIVE relationship", customer.id));
        }
    }
    broken
}

#[tokio::test]
async fn enrolling_a_tenant_racing_its_acceptance_as_a_customer_never_makes_a_partner_a_customer() {
    enrolment_vs_acceptance_as_a_customer(&spawn_app().await).await;
}

async fn enrolment_vs_acceptance_as_a_customer(app: &TestApp) {
    let seller = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let round = async |app: &TestApp| {
        let customer = app.customer_by(&seller.name, Cloud::Global).await;
        let pending = app.ask(&seller, &customer, None).await;
        let mut enrolling = pc_tests::new_partner(ProgramRole::DirectBillPartner, Cloud::Global);
        enrolling.tenant_id = customer.tenant_id.clone();
        let (mut operator, enrol) = (
            app.partners(),
            pc_api::partner::v1::CreatePartnerRequest { partner: Some(enrolling), request_id: String::new() },
        );
        let (mut accepting, accept) = (
            app.relationships_as(Some(&customer.name)),
            pc_api::relationship::v1::AcceptCustomerRelationshipRequest { name: pending.name, etag: String::new() },
        );
        together(vec![
            call(async move { operator.create_partner(enrol).await }),
            call(async move { accepting.accept_customer_relationship(accept).await }),
        ])
        .await;
    };
    race(app, "CreatePartner vs AcceptCustomerRelationship", round, partners_who_are_customers).await;
}

/// Rule 11: an ACCEPTED transfer moved each of its subscriptions to its target exactly once (one
/// `TransferSubscription` it caused, leaving the subscription ACTIVE with the target as partner of
/// record); any other transfer moved none. (No race moves a subscription on after its transfer.)
async fn transfers_that_did_not_move_as_agreed(view: &DatabaseTransaction) -> Vec<String> {
    let subscriptions = all::<subscriptions::Entity>(view).await;
    let moves: Vec<_> = all::<audit::Entity>(view)
        .await
        .into_iter()
        .filter(|event| event.action == "TransferSubscription")
        .map(|event| (event.resource.clone(), audit::decode(&event).expect("a stored change").cause))
        .collect();
    let mut broken = Vec::new();
    for transfer in all::<transfers::Entity>(view).await {
        let cause = Some(format!("transfers/{}", transfer.id));
        for id in transfer.subscriptions() {
            let name = format!("subscriptions/{}", id.0);
            let count = moves.iter().filter(|(resource, by)| *resource == name && *by == cause).count();
            let sub = subscriptions.iter().find(|s| s.id == id.0).expect("its subscription");
            let expected = usize::from(transfer.state == TransferState::Accepted);
            if count != expected {
                broken.push(format!("{} transfer {} moved {name} {count} times", transfer.state, transfer.id));
            }
            let with_target =
                sub.state == SubscriptionState::Active && sub.partner_of_record_id == Some(transfer.target_partner_id);
            if transfer.state == TransferState::Accepted && !with_target {
                broken
                    .push(format!("ACCEPTED transfer {} left {name} {} with another partner", transfer.id, sub.state));
            }
        }
    }
    broken
}

/// Rule 11: no subscription is in two PENDING transfers.
async fn subscriptions_in_two_pending_transfers(view: &DatabaseTransaction) -> Vec<String> {
    let mut held = std::collections::BTreeMap::<Uuid, usize>::new();
    for transfer in all::<transfers::Entity>(view).await.into_iter().filter(|t| t.state == TransferState::Pending) {
        for id in transfer.subscriptions() {
            *held.entry(id.0).or_default() += 1;
        }
    }
    held.into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(id, count)| format!("subscription {id} in {count} PENDING transfers"))
        .collect()
}

/// Rule 7 after a move: nobody supports what it sells, so no ACTIVE support assignment's partner
/// is its subscription's partner of record.
async fn partners_supporting_what_they_sell(view: &DatabaseTransaction) -> Vec<String> {
    let subscriptions = all::<subscriptions::Entity>(view).await;
    let mut broken = Vec::new();
    for assignment in
        all::<support_assignments::Entity>(view).await.into_iter().filter(|a| a.state == AssignmentState::Active)
    {
        let sub = subscriptions.iter().find(|s| s.id == assignment.subscription_id).expect("its subscription");
        if sub.partner_of_record_id == Some(assignment.partner_id) {
            broken.push(format!("ACTIVE assignment {} of the partner of record of {}", assignment.id, sub.id));
        }
    }
    broken
}

/// A subscription of a direct-bill source's customer, and a target related to that customer: a
/// reseller billed by `provider` through their ACTIVE `link`, or a direct-bill partner.
struct Transferable {
    customer: Customer,
    source: Partner,
    source_relationship: String,
    sold: Subscription,
    target: Partner,
    target_relationship: String,
    provider: Option<Partner>,
    link: Option<String>,
}

async fn transferable(app: &TestApp, through_a_provider: bool) -> Transferable {
    let source = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let (customer, source_relationship) = related_customer(app, &source, None).await;
    let sold = app.sell(&source, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let (target, provider, link) = if through_a_provider {
        let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
        let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        let link = app.link(&provider, &reseller).await;
        (reseller, Some(provider), Some(link.name))
    } else {
        (app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await, None, None)
    };
    let target_relationship = app.relate(&target, &customer, provider.as_ref()).await.name;
    Transferable { customer, source, source_relationship, sold, target, target_relationship, provider, link }
}

impl Transferable {
    /// Asks for the subscription now; the call returned is the source accepting.
    async fn asked_and_accepted(&self, app: &TestApp) -> Call {
        let asked =
            app.ask_transfer(&self.target, &self.source, &self.customer, &[&self.sold], self.provider.as_ref()).await;
        accept_transfer(app, &self.source, &asked.name)
    }
}

fn accept_transfer(app: &TestApp, source: &Partner, name: &str) -> Call {
    let (mut client, name) = (app.channel_as(Some(&source.name)), name.to_owned());
    call(async move {
        client.accept_transfer(pc_api::channel::v1::AcceptTransferRequest { name, etag: String::new() }).await
    })
}

#[tokio::test]
async fn accepting_a_transfer_racing_a_cancellation_moves_a_live_subscription_or_nothing() {
    transfer_acceptance_vs_cancellation(&spawn_app().await).await;
}

async fn transfer_acceptance_vs_cancellation(app: &TestApp) {
    let round = async |app: &TestApp| {
        let setting = transferable(app, false).await;
        let accept = setting.asked_and_accepted(app).await;
        let (mut source, name) = (app.channel_as(Some(&setting.source.name)), setting.sold.name.clone());
        let cancel = call(async move {
            source.cancel_subscription(CancelSubscriptionRequest { name, etag: String::new() }).await
        });
        together(vec![accept, cancel]).await;
    };
    race(app, "AcceptTransfer vs CancelSubscription", round, transfers_that_did_not_move_as_agreed).await;
}

#[tokio::test]
async fn accepting_a_transfer_racing_the_end_of_either_relationship_never_leaves_a_sale_without_one() {
    transfer_acceptance_vs_end_of_the_relationships(&spawn_app().await).await;
}

async fn transfer_acceptance_vs_end_of_the_relationships(app: &TestApp) {
    let round = async |app: &TestApp| {
        let setting = transferable(app, false).await;
        let accept = setting.asked_and_accepted(app).await;
        together(vec![
            accept,
            end_relationship(app, &setting.customer, &setting.target_relationship),
            end_relationship(app, &setting.customer, &setting.source_relationship),
        ])
        .await;
    };
    race(
        app,
        "AcceptTransfer vs EndCustomerRelationship (target's, source's)",
        round,
        subscriptions_without_their_channel,
    )
    .await;
}

#[tokio::test]
async fn accepting_a_transfer_racing_the_end_of_the_targets_link_never_leaves_a_sale_without_it() {
    transfer_acceptance_vs_end_of_the_targets_link(&spawn_app().await).await;
}

async fn transfer_acceptance_vs_end_of_the_targets_link(app: &TestApp) {
    let round = async |app: &TestApp| {
        let setting = transferable(app, true).await;
        let accept = setting.asked_and_accepted(app).await;
        let provider = setting.provider.as_ref().expect("a provider");
        let (mut ending, name) = (app.relationships_as(Some(&provider.name)), setting.link.clone().expect("a link"));
        let end =
            call(async move { ending.end_reseller_link(EndResellerLinkRequest { name, etag: String::new() }).await });
        together(vec![accept, end]).await;
    };
    race(app, "AcceptTransfer vs EndResellerLink", round, subscriptions_without_their_channel).await;
}

#[tokio::test]
async fn accepting_a_transfer_racing_the_suspension_of_either_partner_is_never_dated_after_it() {
    transfer_acceptance_vs_suspension(&spawn_app().await).await;
}

async fn transfer_acceptance_vs_suspension(app: &TestApp) {
    let mut turn = 0;
    let round = async |app: &TestApp| {
        let setting = transferable(app, false).await;
        let accept = setting.asked_and_accepted(app).await;
        // The source one round, the target the next.
        turn += 1;
        let suspended = if turn % 2 == 0 { &setting.source } else { &setting.target };
        together(vec![accept, suspend(app, suspended)]).await;
    };
    race(app, "AcceptTransfer vs SuspendPartner", round, started_after_suspension).await;
}

#[tokio::test]
async fn two_transfers_of_one_subscription_asked_and_accepted_at_once_move_it_once() {
    two_transfers_of_one_subscription(&spawn_app().await).await;
}

async fn two_transfers_of_one_subscription(app: &TestApp) {
    let round = async |app: &TestApp| {
        let setting = transferable(app, false).await;
        let rival = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        app.relate(&rival, &setting.customer, None).await;
        let asks = [&setting.target, &rival].map(|target| {
            let request =
                pc_tests::transfer_request(target, &setting.source, &setting.customer, &[&setting.sold], None);
            let mut client = app.channel_as(Some(&target.name));
            call(async move { client.create_transfer(request).await })
        });
        together(asks.into_iter().collect()).await;
        // Whatever was asked, the source accepts twice at once.
        let listed = app
            .channel_as(Some(&setting.source.name))
            .list_transfers(pc_api::channel::v1::ListTransfersRequest::default())
            .await
            .reply();
        let accepts = listed.transfers.iter().flat_map(|t| {
            [accept_transfer(app, &setting.source, &t.name), accept_transfer(app, &setting.source, &t.name)]
        });
        together(accepts.collect()).await;
    };
    let broken = async |view: &DatabaseTransaction| {
        let mut all = subscriptions_in_two_pending_transfers(view).await;
        all.extend(transfers_that_did_not_move_as_agreed(view).await);
        all
    };
    race(app, "CreateTransfer vs CreateTransfer, AcceptTransfer vs AcceptTransfer", round, broken).await;
}

#[tokio::test]
async fn accepting_a_transfer_racing_the_acceptance_of_the_targets_support_never_leaves_it_supporting_its_sale() {
    transfer_acceptance_vs_support_acceptance(&spawn_app().await).await;
}

async fn transfer_acceptance_vs_support_acceptance(app: &TestApp) {
    let round = async |app: &TestApp| {
        let setting = transferable(app, false).await;
        let support = requested_support_accepted(app, &setting.customer, &setting.sold, &setting.target).await;
        let accept = setting.asked_and_accepted(app).await;
        together(vec![accept, support]).await;
    };
    race(app, "AcceptTransfer vs AcceptSupportAssignment", round, partners_supporting_what_they_sell).await;
}

/// Rules 4 and 15: at most one live link per pair, and a lapsed link expired once, whoever
/// expires it (the expiry engine or a new invitation of the pair).
async fn links_live_twice_or_expired_twice(view: &DatabaseTransaction) -> Vec<String> {
    let mut broken = Vec::new();
    let mut live = std::collections::BTreeMap::<(Uuid, Uuid), usize>::new();
    for link in all::<reseller_links::Entity>(view).await.into_iter().filter(|l| l.state.is_live()) {
        *live.entry((link.provider_id, link.reseller_id)).or_default() += 1;
    }
    broken.extend(live.into_iter().filter(|(_, n)| *n > 1).map(|(pair, n)| format!("{n} live links of {pair:?}")));
    let mut expiries = std::collections::BTreeMap::<String, usize>::new();
    for event in all::<audit::Entity>(view).await.into_iter().filter(|e| e.action == "ExpireResellerLink") {
        *expiries.entry(event.resource).or_default() += 1;
    }
    broken.extend(expiries.into_iter().filter(|(_, n)| *n > 1).map(|(link, n)| format!("{link} expired {n} times")));
    broken
}

#[tokio::test]
async fn inviting_again_racing_the_expiry_engine_expires_the_lapsed_link_once() {
    invitation_vs_expiry_engine(&spawn_app().await).await;
}

async fn invitation_vs_expiry_engine(app: &TestApp) {
    let round = async |app: &TestApp| {
        let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
        let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        let lapsed = app.invite(&provider, &reseller).await;
        app.pass_deadline(&lapsed.name, chrono::Duration::seconds(1)).await;
        let (mut inviter, invite) = (
            app.relationships_as(Some(&provider.name)),
            InviteResellerRequest {
                provider: provider.name.clone(),
                reseller: reseller.name.clone(),
                ..Default::default()
            },
        );
        let (db, kinds) = (app.db.clone(), app.expiring.clone());
        let engine: Call = Box::pin(async move {
            let pass = pc_server::expiry::run_once(&db, &kinds, pc_store::db::now(), pc_server::expiry::BATCH).await;
            pass.map(drop).map_err(|error| Status::internal(error.to_string()))
        });
        together(vec![call(async move { inviter.invite_reseller(invite).await }), engine]).await;
    };
    race(app, "InviteReseller vs the expiry engine", round, links_live_twice_or_expired_twice).await;
}

/// Rule 12: every live (APPROVAL_PENDING or ACTIVE) admin relationship rests on an ACTIVE
/// relationship between its partner and customer.
async fn admin_relationships_without_their_relationship(view: &DatabaseTransaction) -> Vec<String> {
    let relationships = all::<customer_relationships::Entity>(view).await;
    all::<admin_relationships::Entity>(view)
        .await
        .into_iter()
        .filter(|admin| admin.state.is_live())
        .filter(|admin| !has_active_relationship(&relationships, admin.partner_id, admin.customer_id))
        .map(|admin| format!("adminRelationships/{} is {} without an ACTIVE relationship", admin.id, admin.state))
        .collect()
}

/// Rule 12: a termination is final: an admin relationship that was terminated is TERMINATED (an
/// approval that lost the race did not revive it).
async fn admin_relationships_moved_after_termination(view: &DatabaseTransaction) -> Vec<String> {
    let terminated: std::collections::BTreeSet<String> = all::<audit::Entity>(view)
        .await
        .into_iter()
        .filter(|change| change.action == "TerminateAdminRelationship")
        .map(|change| change.resource)
        .collect();
    all::<admin_relationships::Entity>(view)
        .await
        .into_iter()
        .map(|admin| (format!("adminRelationships/{}", admin.id), admin.state))
        .filter(|(name, state)| terminated.contains(name) && *state != pc_domain::AdminRelationshipState::Terminated)
        .map(|(name, state)| format!("{name} was terminated and is {state}"))
        .collect()
}

/// The customer approves the admin relationship `name`.
fn approve_admin(app: &TestApp, customer: &Customer, name: &str) -> Call {
    let (mut client, name) = (app.relationships_as(Some(&customer.name)), name.to_owned());
    call(async move {
        let approve = pc_api::relationship::v1::ApproveAdminRelationshipRequest { name, etag: String::new() };
        client.approve_admin_relationship(approve).await
    })
}

#[tokio::test]
async fn approving_admin_roles_racing_the_end_of_the_relationship_never_leaves_them_live() {
    admin_approval_vs_end_of_the_relationship(&spawn_app().await).await;
}

async fn admin_approval_vs_end_of_the_relationship(app: &TestApp) {
    use pc_api::relationship::v1::admin_relationship::Role;
    let round = async |app: &TestApp| {
        let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let (customer, relationship) = related_customer(app, &partner, None).await;
        let mut calls = Vec::new();
        for role in [Role::HelpdeskAgent, Role::BillingReader] {
            let asked = app.ask_admin(&partner, &customer, &[role]).await;
            calls.push(approve_admin(app, &customer, &asked.name));
        }
        let (mut asking, request) = (
            app.relationships_as(Some(&partner.name)),
            pc_tests::admin_request(&partner, &customer, &[Role::LicenseAdmin]),
        );
        calls.push(call(async move { asking.request_admin_relationship(request).await }));
        calls.push(end_relationship(app, &customer, &relationship));
        together(calls).await;
    };
    let what = "Request and ApproveAdminRelationship vs EndCustomerRelationship";
    race(app, what, round, admin_relationships_without_their_relationship).await;
}

#[tokio::test]
async fn approving_admin_roles_racing_their_termination_never_revives_them() {
    admin_approval_vs_termination(&spawn_app().await).await;
}

async fn admin_approval_vs_termination(app: &TestApp) {
    use pc_api::relationship::v1::{TerminateAdminRelationshipRequest, admin_relationship::Role};
    let round = async |app: &TestApp| {
        let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let (customer, _) = related_customer(app, &partner, None).await;
        let asked = app.ask_admin(&partner, &customer, &[Role::SupportEngineer]).await;
        let (mut terminating, name) = (app.relationships_as(Some(&partner.name)), asked.name.clone());
        let terminate = call(async move {
            terminating
                .terminate_admin_relationship(TerminateAdminRelationshipRequest { name, etag: String::new() })
                .await
        });
        together(vec![approve_admin(app, &customer, &asked.name), terminate]).await;
    };
    race(
        app,
        "ApproveAdminRelationship vs TerminateAdminRelationship",
        round,
        admin_relationships_moved_after_termination,
    )
    .await;
}

/// Rule 13: nothing is changed under a role after the role ended: every change made under an
/// admin relationship was made before the relationship's end (the time its termination stamped).
async fn changes_under_a_role_after_it_ended(view: &DatabaseTransaction) -> Vec<String> {
    let ended: std::collections::BTreeMap<String, DateTime<Utc>> = all::<admin_relationships::Entity>(view)
        .await
        .into_iter()
        .filter(|admin| !admin.state.is_live())
        .filter_map(|admin| Some((format!("adminRelationships/{}", admin.id), admin.end_time?)))
        .collect();
    let mut broken = Vec::new();
    for row in all::<audit::Entity>(view).await {
        let change = audit::decode(&row).expect("a readable change");
        let Some(end) = change.delegation.as_ref().and_then(|name| ended.get(name)) else { continue };
        if row.create_time > *end {
            broken.push(format!("{} {} under {:?} after it ended", change.method, change.resource, change.delegation));
        }
    }
    broken
}

#[tokio::test]
async fn acting_under_a_role_racing_its_termination_changes_nothing_after_it_ended() {
    role_vs_termination(&spawn_app().await).await;
}

async fn role_vs_termination(app: &TestApp) {
    use pc_api::relationship::v1::{
        AcceptCustomerRelationshipRequest, TerminateAdminRelationshipRequest, admin_relationship::Role,
    };
    let round = async |app: &TestApp| {
        let admin = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let (customer, _) = related_customer(app, &admin, None).await;
        let granted = app.grant_admin(&admin, &customer, &[Role::GlobalAdmin]).await;
        let mut calls = Vec::new();
        for _ in 0..3 {
            let newcomer = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
            let asked = app.ask(&newcomer, &customer, None).await;
            let (mut client, name) = (app.relationships_as(Some(&admin.name)), asked.name);
            calls.push(call(async move {
                client
                    .accept_customer_relationship(AcceptCustomerRelationshipRequest { name, etag: String::new() })
                    .await
            }));
        }
        let (mut terminating, name) = (app.relationships_as(Some(&customer.name)), granted.name);
        calls.push(call(async move {
            terminating
                .terminate_admin_relationship(TerminateAdminRelationshipRequest { name, etag: String::new() })
                .await
        }));
        together(calls).await;
    };
    let what = "AcceptCustomerRelationship under GLOBAL_ADMIN vs TerminateAdminRelationship";
    race(app, what, round, changes_under_a_role_after_it_ended).await;
}

/// Every race above with three processes of the real `partner-center` binary over one PostgreSQL
/// database, as a scaled deployment runs them: every client the app hands out belongs to the next
/// process in turn, so the calls of one round, built one after another, each go to another
/// process. The locks live in the database, so the protocol holds across processes as within one.
/// The races run at once, which keeps all three processes busy as a deployment's would be; each
/// invariant is over every row, so a failure may name rows another race broke.
#[tokio::test]
async fn every_race_holds_with_its_calls_spread_over_three_server_processes() {
    let mut app = spawn_app().await;
    if app.skipped_without_postgres("replicas share one PostgreSQL database (README, Scaling)") {
        return;
    }
    app.spread_over_processes(3, &[]).await;
    let app = &app;
    tokio::join!(
        sale_through_a_reseller_vs_end_of_its_link(app),
        sale_vs_end_of_the_relationship(app),
        support_request_vs_end_of_the_relationship(app),
        support_request_vs_cancellation(app),
        support_acceptance_vs_end_of_the_relationship(app),
        anything_started_vs_suspension(app),
        asking_through_a_provider_vs_end_of_the_link(app),
        enrolment_vs_acceptance_as_a_customer(app),
        resize_vs_support_acceptance(app),
        cancellation_vs_support_acceptance(app),
        transfer_acceptance_vs_cancellation(app),
        transfer_acceptance_vs_end_of_the_relationships(app),
        transfer_acceptance_vs_end_of_the_targets_link(app),
        transfer_acceptance_vs_suspension(app),
        two_transfers_of_one_subscription(app),
        transfer_acceptance_vs_support_acceptance(app),
        invitation_vs_expiry_engine(app),
        admin_approval_vs_end_of_the_relationship(app),
        admin_approval_vs_termination(app),
        role_vs_termination(app),
    );
}
