//! ChannelService transfers (rule 11): the target asks, the source hands over, everything moves
//! or nothing does; who answers, who sees, what the feed tells each party, and the deadline
//! (rule 15). Their races with the other resources' methods are in `races.rs`.

use std::collections::BTreeSet;

use pc_api::{
    channel::v1::{transfer::State, *},
    event::v1::{ListEventsRequest, event::ResourceAfter},
    partner::v1::*,
    relationship::v1::EndCustomerRelationshipRequest,
    types::v1::Cloud,
};
use pc_tests::{Reply, TestApp, audit_actions, expect_code, reason, spawn_app, transfer_request};
use tonic::Code;

fn accept(name: &str) -> AcceptTransferRequest {
    AcceptTransferRequest { name: name.to_owned(), etag: String::new() }
}

fn get(name: &str) -> GetSubscriptionRequest {
    GetSubscriptionRequest { name: name.to_owned() }
}

/// A customer with two subscriptions sold by a direct-bill source, and a direct-bill target
/// related to the customer.
async fn setting(app: &TestApp) -> (Customer, Partner, [Subscription; 2], Partner) {
    let customer = app.customer_by("operator", Cloud::Global).await;
    let source = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&source, &customer, None).await;
    let suite = app.sell(&source, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let platform = app.sell(&source, &customer, "azure-plan", ProductFamily::Azure).await;
    let target = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&target, &customer, None).await;
    (customer, source, [suite, platform], target)
}

#[tokio::test]
async fn accepting_moves_the_named_subscriptions_to_the_target_keeping_their_names_and_history() {
    let app = spawn_app().await;
    let (customer, source, [suite, platform], target) = setting(&app).await;
    let asked = app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
    assert_eq!(asked.state(), State::Pending);
    assert_eq!(asked.subscriptions, std::slice::from_ref(&suite.name));
    assert!(asked.expire_time.is_some() && asked.accept_time.is_none());
    // Until the source answers, the subscription stays the source's to read.
    expect_code(app.channel_as(Some(&target.name)).get_subscription(get(&suite.name)).await, Code::PermissionDenied);

    let accepted = app.channel_as(Some(&source.name)).accept_transfer(accept(&asked.name)).await.reply();
    assert_eq!(accepted.state(), State::Accepted);
    assert!(accepted.accept_time.is_some());

    let moved = app.channel_as(Some(&target.name)).get_subscription(get(&suite.name)).await.reply();
    assert_eq!((moved.partner_of_record.as_str(), moved.billing_partner.as_str()), (&*target.name, &*target.name));
    assert_eq!(moved.sales_channel(), SalesChannel::ProgramDirectBill);
    assert_eq!((moved.offer_id.as_str(), moved.quantity, moved.create_time), ("office-365-e3", 10, suite.create_time));
    expect_code(app.channel_as(Some(&source.name)).get_subscription(get(&suite.name)).await, Code::PermissionDenied);
    let kept = app.channel_as(Some(&source.name)).get_subscription(get(&platform.name)).await.reply();
    assert_eq!(kept, platform, "what the transfer did not name stays");
    assert_eq!(audit_actions(&app, &suite.name).await, ["CreateSubscription", "TransferSubscription"]);
    assert_eq!(audit_actions(&app, &asked.name).await, ["CreateTransfer", "AcceptTransfer"]);

    // The source's relationship no longer holds what it sold: it may end now (rule 8) once the
    // rest is gone; the target's may not, since it transacts the moved subscription.
    let relationships = app
        .relationships()
        .list_customer_relationships(pc_api::relationship::v1::ListCustomerRelationshipsRequest::default())
        .await
        .reply();
    let held_by = |partner: &Partner| {
        relationships.customer_relationships.iter().find(|r| r.partner == partner.name && r.customer == customer.name)
    };
    let target_relationship = held_by(&target).expect("the target's relationship").name.clone();
    let end = EndCustomerRelationshipRequest { name: target_relationship, etag: String::new() };
    let status = expect_code(app.relationships().end_customer_relationship(end).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "ACTIVE_SUBSCRIPTIONS");
}

#[tokio::test]
async fn a_reseller_takes_over_all_the_sources_subscriptions_billed_by_its_provider() {
    let app = spawn_app().await;
    let (customer, source, [suite, platform], _) = setting(&app).await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    app.link(&provider, &reseller).await;
    app.relate(&reseller, &customer, Some(&provider)).await;

    let unnamed = transfer_request(&reseller, &source, &customer, &[], None);
    let unnamed = app.channel_as(Some(&reseller.name)).create_transfer(unnamed).await;
    assert_eq!(reason(&expect_code(unnamed, Code::FailedPrecondition)), "TRANSFER_NOT_ALLOWED");
    let asked = app.ask_transfer(&reseller, &source, &customer, &[], Some(&provider)).await;
    let listed: BTreeSet<_> = asked.subscriptions.iter().cloned().collect();
    assert_eq!(listed, BTreeSet::from([suite.name.clone(), platform.name.clone()]), "all of the source's");

    app.channel_as(Some(&source.name)).accept_transfer(accept(&asked.name)).await.reply();
    for name in [&suite.name, &platform.name] {
        let moved = app.channel_as(Some(&provider.name)).get_subscription(get(name)).await.reply();
        assert_eq!(
            (moved.partner_of_record.as_str(), moved.billing_partner.as_str()),
            (&*reseller.name, &*provider.name)
        );
        assert_eq!(moved.sales_channel(), SalesChannel::ProgramIndirect);
    }
}

#[tokio::test]
async fn a_transfer_needs_two_partners_of_the_customers_cloud_and_the_sources_live_program_subscriptions() {
    let app = spawn_app().await;
    let (customer, source, [suite, platform], target) = setting(&app).await;
    let create = |as_who: &Partner, request: CreateTransferRequest| {
        let mut client = app.channel_as(Some(&as_who.name));
        async move { client.create_transfer(request).await }
    };
    let refused = async |as_who: &Partner, request: CreateTransferRequest| {
        reason(&expect_code(create(as_who, request).await, Code::FailedPrecondition))
    };

    let to_itself = transfer_request(&source, &source, &customer, &[&suite], None);
    assert_eq!(refused(&source, to_itself).await, "TRANSFER_NOT_ALLOWED");
    // A partner that may not read the customer learns nothing of it (rule 9); an operator acting
    // for it is told why.
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let strangers = transfer_request(&stranger, &source, &customer, &[&suite], None);
    expect_code(create(&stranger, strangers.clone()).await, Code::PermissionDenied);
    let as_operator = app.channel().create_transfer(strangers).await;
    assert_eq!(reason(&expect_code(as_operator, Code::FailedPrecondition)), "NO_ACTIVE_RELATIONSHIP");
    let abroad = app.enrol(ProgramRole::DirectBillPartner, Cloud::China).await;
    let cross = app.channel().create_transfer(transfer_request(&target, &abroad, &customer, &[&suite], None)).await;
    assert_eq!(reason(&expect_code(cross, Code::FailedPrecondition)), "CROSS_CLOUD");
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let by_provider = transfer_request(&provider, &source, &customer, &[&suite], None);
    let by_provider = app.channel().create_transfer(by_provider).await;
    assert_eq!(reason(&expect_code(by_provider, Code::FailedPrecondition)), "ROLE_NOT_ALLOWED");

    // Subscriptions that are not the source's live program sales to this customer are named,
    // and why is not said: the target may not read them.
    let bought_elsewhere = app.bought_elsewhere(&customer, 2).await;
    let cancelled = app.sell(&source, &customer, "dynamics-365-sales", ProductFamily::Dynamics).await;
    let cancel = CancelSubscriptionRequest { name: cancelled.name.clone(), etag: String::new() };
    app.channel().cancel_subscription(cancel).await.reply();
    for stray in [&bought_elsewhere, &cancelled] {
        let request = transfer_request(&target, &source, &customer, &[&suite, stray], None);
        let status = expect_code(create(&target, request).await, Code::FailedPrecondition);
        assert_eq!(reason(&status), "TRANSFER_NOT_ALLOWED");
        assert!(status.message().contains(&stray.name) && !status.message().contains(&suite.name), "{status:?}");
    }
    let twice = transfer_request(&target, &source, &customer, &[&suite, &suite], None);
    expect_code(create(&target, twice).await, Code::InvalidArgument);
    let named_provider = transfer_request(&target, &source, &customer, &[&suite], Some(&provider));
    assert_eq!(refused(&target, named_provider).await, "TRANSFER_NOT_ALLOWED");

    // No subscription in two PENDING transfers; once the first is answered, it may be asked again.
    let first = app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
    let again = transfer_request(&target, &source, &customer, &[&platform, &suite], None);
    let status = expect_code(create(&target, again.clone()).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "SUBSCRIPTION_IN_TRANSFER");
    assert!(!status.message().contains(&first.name), "names the subscription, not the transfer: {status:?}");
    let decline = DeclineTransferRequest { name: first.name.clone(), etag: String::new() };
    let declined = app.channel_as(Some(&source.name)).decline_transfer(decline).await.reply();
    assert_eq!(declined.state(), State::Declined);
    assert!(declined.end_time.is_some());
    create(&target, again).await.reply();
}

#[tokio::test]
async fn the_source_answers_the_target_cancels_and_the_customer_and_operators_only_read() {
    let app = spawn_app().await;
    let (customer, source, [suite, _], target) = setting(&app).await;
    let asked = app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;

    for who in [&target.name, &customer.name, &stranger.name] {
        expect_code(app.channel_as(Some(who)).accept_transfer(accept(&asked.name)).await, Code::PermissionDenied);
    }
    let cancel = CancelTransferRequest { name: asked.name.clone(), etag: String::new() };
    expect_code(app.channel_as(Some(&source.name)).cancel_transfer(cancel.clone()).await, Code::PermissionDenied);

    for who in [&source.name, &target.name, &customer.name, &"operator".to_owned()] {
        let seen = app.channel_as(Some(who)).get_transfer(GetTransferRequest { name: asked.name.clone() }).await;
        assert_eq!(seen.reply(), asked, "{who} reads it");
        let listed = app.channel_as(Some(who)).list_transfers(ListTransfersRequest::default()).await.reply();
        assert!(listed.transfers.contains(&asked), "{who} lists it");
    }
    let hidden =
        app.channel_as(Some(&stranger.name)).get_transfer(GetTransferRequest { name: asked.name.clone() }).await;
    let hidden = expect_code(hidden, Code::PermissionDenied);
    let nowhere = format!("transfers/{}", uuid::Uuid::now_v7());
    let missing = app.channel_as(Some(&stranger.name)).get_transfer(GetTransferRequest { name: nowhere.clone() }).await;
    let missing = expect_code(missing, Code::PermissionDenied);
    assert_eq!(hidden.message().replace(&asked.name, "X"), missing.message().replace(&nowhere, "X"));
    let theirs = app.channel_as(Some(&stranger.name)).list_transfers(ListTransfersRequest::default()).await.reply();
    assert!(theirs.transfers.is_empty());

    let cancel = CancelTransferRequest { etag: asked.etag.clone(), ..cancel };
    let cancelled = app.channel_as(Some(&target.name)).cancel_transfer(cancel).await.reply();
    assert_eq!(cancelled.state(), State::Cancelled);
    let status = expect_code(
        app.channel_as(Some(&source.name)).accept_transfer(accept(&asked.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "INVALID_TRANSITION");
    let still = app.channel_as(Some(&source.name)).get_subscription(get(&suite.name)).await.reply();
    assert_eq!(still.partner_of_record, source.name);
}

#[tokio::test]
async fn if_one_subscription_no_longer_qualifies_nothing_moves_and_the_answer_names_it() {
    let app = spawn_app().await;
    let (customer, source, [suite, platform], target) = setting(&app).await;
    let asked = app.ask_transfer(&target, &source, &customer, &[&suite, &platform], None).await;
    let cancel = CancelSubscriptionRequest { name: platform.name.clone(), etag: String::new() };
    app.channel_as(Some(&source.name)).cancel_subscription(cancel).await.reply();

    let status = expect_code(
        app.channel_as(Some(&source.name)).accept_transfer(accept(&asked.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "TRANSFER_NOT_ALLOWED");
    assert!(status.message().contains(&platform.name) && !status.message().contains(&suite.name), "{status:?}");
    let unmoved = app.channel_as(Some(&source.name)).get_subscription(get(&suite.name)).await.reply();
    assert_eq!(unmoved, suite, "nothing moved");
    let transfer = app.channel().get_transfer(GetTransferRequest { name: asked.name.clone() }).await.reply();
    assert_eq!(transfer, asked, "still PENDING, unchanged");

    // A suspended source hands nothing over (rule 3).
    let cancel = CancelTransferRequest { name: asked.name.clone(), etag: String::new() };
    app.channel_as(Some(&target.name)).cancel_transfer(cancel).await.reply();
    let lone = app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
    let suspend = SuspendPartnerRequest { name: source.name.clone(), etag: String::new() };
    app.partners().suspend_partner(suspend).await.reply();
    let status = expect_code(
        app.channel_as(Some(&source.name)).accept_transfer(accept(&lone.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_SUSPENDED");
}

#[tokio::test]
async fn the_targets_own_support_ends_with_the_move_and_the_customers_other_supporters_stay() {
    let app = spawn_app().await;
    let (customer, source, [suite, _], target) = setting(&app).await;
    let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&supporter, &customer, None).await;
    let own = app.hire(&target, &suite, &customer).await;
    let other = app
        .channel_as(Some(&supporter.name))
        .request_support(RequestSupportRequest {
            subscription: suite.name.clone(),
            partner: supporter.name.clone(),
            request_id: String::new(),
        })
        .await
        .reply();
    let asked = app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
    app.channel_as(Some(&source.name)).accept_transfer(accept(&asked.name)).await.reply();

    let state_of = async |name: &str| {
        let request = GetSupportAssignmentRequest { name: name.to_owned() };
        app.channel().get_support_assignment(request).await.reply().state()
    };
    assert_eq!(state_of(&own.name).await, support_assignment::State::Ended);
    assert_eq!(state_of(&other.name).await, support_assignment::State::Requested);
    let history = pc_tests::audit_history(&app, &own.name).await;
    assert_eq!(history.last().and_then(|change| change.cause.clone()), Some(asked.name.clone()));
}

#[tokio::test]
async fn a_transfer_past_its_deadline_is_expired_before_anything_marks_it() {
    let app = spawn_app().await;
    let (customer, source, [suite, _], target) = setting(&app).await;
    let asked = app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
    app.pass_deadline(&asked.name, chrono::Duration::seconds(1)).await;

    let status = expect_code(
        app.channel_as(Some(&source.name)).accept_transfer(accept(&asked.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "EXPIRED");
    let cancel = CancelTransferRequest { name: asked.name.clone(), etag: String::new() };
    let status =
        expect_code(app.channel_as(Some(&target.name)).cancel_transfer(cancel).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "EXPIRED");
    // It holds the subscription no longer: another transfer may ask for it.
    app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
}

#[tokio::test]
async fn each_party_receives_the_transfer_and_the_move_and_the_source_nothing_after() {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let source = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    app.link(&provider, &source).await;
    app.relate(&source, &customer, Some(&provider)).await;
    let suite = app.sell(&source, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let target = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&target, &customer, None).await;
    let asked = app.ask_transfer(&target, &source, &customer, &[&suite], None).await;
    let accepted = app.channel_as(Some(&source.name)).accept_transfer(accept(&asked.name)).await.reply();
    let resize = UpdateSubscriptionRequest {
        subscription: Some(Subscription { name: suite.name.clone(), quantity: 12, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["quantity".into()] }),
    };
    let resized = app.channel_as(Some(&target.name)).update_subscription(resize).await.reply();

    // The feed passes a change once every older write has ended: wait for the last one.
    let start = std::time::Instant::now();
    let last = ListEventsRequest {
        resource: suite.name.clone(),
        event_type: "subscription.updated".into(),
        ..Default::default()
    };
    while app.events_as(Some("operator")).list_events(last.clone()).await.reply().events.is_empty() {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the feed never passed the resize");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let events_of = async |who: &str, resource: &str| {
        let filter = ListEventsRequest { resource: resource.to_owned(), page_size: 100, ..Default::default() };
        let page = app.events_as(Some(who)).list_events(filter).await.reply();
        page.events.into_iter().map(|e| (e.event_type, e.resource_after)).collect::<Vec<_>>()
    };
    let types = |events: &[(String, Option<ResourceAfter>)]| events.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();

    let transfer_events = events_of("operator", &asked.name).await;
    assert_eq!(types(&transfer_events), ["transfer.created", "transfer.accepted"]);
    assert_eq!(transfer_events[1].1, Some(ResourceAfter::Transfer(accepted)));
    for who in [&source.name, &target.name, &customer.name] {
        assert_eq!(types(&events_of(who, &asked.name).await), ["transfer.created", "transfer.accepted"], "{who}");
    }
    assert!(events_of(&provider.name, &asked.name).await.is_empty(), "the source's provider is no party to it");

    let moved = app.channel().get_subscription(get(&suite.name)).await.reply();
    let all = events_of("operator", &suite.name).await;
    assert_eq!(types(&all), ["subscription.created", "subscription.transferred", "subscription.updated"]);
    assert_eq!(all[2].1, Some(ResourceAfter::Subscription(resized)));
    assert_eq!(
        all[1].1.as_ref().map(
            |after| matches!(after, ResourceAfter::Subscription(s) if s.partner_of_record == moved.partner_of_record)
        ),
        Some(true)
    );
    // The source and its provider receive the move that ends their view, and nothing after it.
    for who in [&source.name, &provider.name] {
        assert_eq!(
            types(&events_of(who, &suite.name).await),
            ["subscription.created", "subscription.transferred"],
            "{who}"
        );
    }
    assert_eq!(
        types(&events_of(&target.name, &suite.name).await),
        ["subscription.transferred", "subscription.updated"]
    );
}
