//! The typed client against a real server (the test harness's, over a fresh database).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "../examples/two_tier.rs"]
#[allow(dead_code)]
mod two_tier;

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use partner_center_client::{Client, ListPager, TokenSource, retry_idempotent};
use pc_api::partner::v1::{CreatePartnerRequest, ListPartnersRequest, ProgramRole};
use pc_api::relationship::v1::reseller_link::State;
use pc_api::types::v1::Cloud;
use pc_tests::{TEST_SECRET, new_partner, spawn_app};
use tonic::{Code, Response, Status};

fn operator_tokens() -> TokenSource {
    TokenSource::Secret { secret: TEST_SECRET.to_owned(), subject: "operator".to_owned(), ttl: Duration::from_secs(60) }
}

#[tokio::test]
async fn the_two_tier_example_runs_against_a_spawned_server() {
    let app = spawn_app().await;
    let operator = Client::from_channel(app.channel.clone(), operator_tokens());
    let link = two_tier::run(&operator, TEST_SECRET).await.expect("the example's flow");
    assert_eq!(link.state(), State::Active);
}

#[tokio::test]
async fn the_pager_walks_every_page_once() {
    let app = spawn_app().await;
    let client = Client::from_channel(app.channel.clone(), operator_tokens());
    let mut created = Vec::new();
    for _ in 0..5 {
        let request = CreatePartnerRequest {
            partner: Some(new_partner(ProgramRole::DirectBillPartner, Cloud::Global)),
            ..Default::default()
        };
        created.push(client.partners().create_partner(request).await.unwrap().into_inner().name);
    }
    let mut pager = ListPager::new(ListPartnersRequest { page_size: 2, ..Default::default() });
    let mut pages = Vec::new();
    while let Some(page) =
        pager.next_page(async |request| client.partners().list_partners(request).await).await.unwrap()
    {
        pages.push(page.into_iter().map(|partner| partner.name).collect::<Vec<_>>());
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    assert_eq!(pages.concat(), created, "every partner once, in creation order");

    let all = ListPager::new(ListPartnersRequest { page_size: 3, ..Default::default() })
        .collect(async |request| client.partners().list_partners(request).await)
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
}

#[tokio::test]
async fn each_service_can_have_its_own_address() {
    let app = spawn_app().await;
    let url = format!("http://{}", app.addr);
    let client = Client::connect_each(url.clone(), url.clone(), url, operator_tokens()).await.unwrap();
    let link = two_tier::run(&client, TEST_SECRET).await.expect("the flow over three channels");
    assert_eq!(link.state(), State::Active);
}

#[tokio::test]
async fn a_static_token_is_sent_and_a_wrong_one_refused() {
    let app = spawn_app().await;
    let good = Client::from_channel(app.channel.clone(), TokenSource::Static(app.token("operator")));
    assert!(good.partners().list_partners(ListPartnersRequest::default()).await.is_ok());
    let bad = good.with_tokens(TokenSource::Static("not-a-token".into()));
    let refused = bad.partners().list_partners(ListPartnersRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn idempotent_calls_are_retried_on_unavailable_and_aborted_only() {
    let calls = AtomicU32::new(0);
    let answer = retry_idempotent(|| async {
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Err(Status::unavailable("restarting")),
            1 => Err(Status::aborted("lost a race")),
            _ => Ok(Response::new(7)),
        }
    })
    .await;
    assert_eq!(answer.map(Response::into_inner).ok(), Some(7));
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    calls.store(0, Ordering::SeqCst);
    let denied: Result<Response<()>, Status> = retry_idempotent(|| async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(Status::permission_denied("no"))
    })
    .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a refusal is not retried");
}

#[tokio::test]
async fn the_event_watcher_goes_on_after_its_stream_is_cut_and_returns_each_event_once() {
    use partner_center_client::EventWatcher;
    use pc_api::event::v1::{WatchEventsRequest, watch_events_request::Start};
    // The server closes every connection a second after it opened (plus its 5 s drain).
    let options = pc_tests::AppOptions { max_connection_age_secs: Some(1), ..Default::default() };
    let app = pc_tests::spawn_app_with(options).await;
    let client = Client::from_channel(app.channel.clone(), operator_tokens());
    let from_start = WatchEventsRequest { start: Some(Start::FromBeginning(true)), ..Default::default() };
    let mut watcher = EventWatcher::new(&client, from_start);
    let enrol = async || {
        let request = CreatePartnerRequest {
            partner: Some(new_partner(ProgramRole::DirectBillPartner, Cloud::Global)),
            ..Default::default()
        };
        let create = || {
            let (mut partners, request) = (client.partners(), request.clone());
            async move { partners.create_partner(request).await }
        };
        retry_idempotent(create).await.unwrap().into_inner().name
    };
    let next = async |watcher: &mut EventWatcher| {
        tokio::time::timeout(Duration::from_secs(20), watcher.next()).await.expect("an event").expect("the watch")
    };
    let (mut created, mut received) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        created.push(enrol().await);
        received.push(next(&mut watcher).await.resource);
    }
    // Past the connection's age and drain: the stream the watcher holds is cut.
    tokio::time::sleep(Duration::from_secs(7)).await;
    for _ in 0..3 {
        created.push(enrol().await);
        received.push(next(&mut watcher).await.resource);
    }
    assert_eq!(received, created, "every event once, in order");
    assert!(watcher.watches() >= 2, "the stream was cut and watched again ({} watches)", watcher.watches());
}

#[tokio::test]
async fn a_transfer_asked_twice_with_one_request_id_is_one_transfer_and_pages_and_moves_through_the_client() {
    use pc_api::channel::v1::{AcceptTransferRequest, ListTransfersRequest, ProductFamily, transfer::State};
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let source = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&source, &customer, None).await;
    let sold = app.sell(&source, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let target = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&target, &customer, None).await;
    let as_partner = |partner: &pc_api::partner::v1::Partner| {
        let tokens = TokenSource::Secret {
            secret: TEST_SECRET.to_owned(),
            subject: partner.name.clone(),
            ttl: Duration::from_secs(60),
        };
        Client::from_channel(app.channel.clone(), tokens)
    };
    let (target_client, source_client) = (as_partner(&target), as_partner(&source));

    let mut request = pc_tests::transfer_request(&target, &source, &customer, &[&sold], None);
    request.request_id = uuid::Uuid::new_v4().to_string();
    let ask = || async {
        let channel = target_client.channel();
        retry_idempotent(|| {
            let mut channel = channel.clone();
            let request = request.clone();
            async move { channel.create_transfer(request).await }
        })
        .await
    };
    let first = ask().await.expect("ask").into_inner();
    let again = ask().await.expect("ask again").into_inner();
    assert_eq!(first, again, "a repeated request_id answers with the first transfer");

    let listed = ListPager::new(ListTransfersRequest { page_size: 1, ..Default::default() })
        .collect(async |request| target_client.channel().list_transfers(request).await)
        .await
        .expect("list");
    assert_eq!(listed, std::slice::from_ref(&first));
    let accept = AcceptTransferRequest { name: first.name.clone(), etag: first.etag.clone() };
    let accepted = source_client.channel().accept_transfer(accept).await.expect("accept").into_inner();
    assert_eq!(accepted.state(), State::Accepted);
}

#[tokio::test]
async fn admin_roles_asked_twice_with_one_request_id_are_one_request_and_page_and_approve_through_the_client() {
    use pc_api::relationship::v1::{
        ApproveAdminRelationshipRequest, ListAdminRelationshipsRequest,
        admin_relationship::{Role, State},
    };
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&partner, &customer, None).await;
    let as_ = |subject: &str| {
        let tokens = TokenSource::Secret {
            secret: TEST_SECRET.to_owned(),
            subject: subject.to_owned(),
            ttl: Duration::from_secs(60),
        };
        Client::from_channel(app.channel.clone(), tokens)
    };
    let (partner_client, customer_client) = (as_(&partner.name), as_(&customer.name));

    let mut request = pc_tests::admin_request(&partner, &customer, &[Role::HelpdeskAgent]);
    request.request_id = uuid::Uuid::new_v4().to_string();
    let ask = || async {
        let relationships = partner_client.relationships();
        retry_idempotent(|| {
            let mut relationships = relationships.clone();
            let request = request.clone();
            async move { relationships.request_admin_relationship(request).await }
        })
        .await
    };
    let first = ask().await.expect("ask").into_inner();
    let again = ask().await.expect("ask again").into_inner();
    assert_eq!(first, again, "a repeated request_id answers with the first request");

    let listed = ListPager::new(ListAdminRelationshipsRequest { page_size: 1, ..Default::default() })
        .collect(async |request| customer_client.relationships().list_admin_relationships(request).await)
        .await
        .expect("list");
    assert_eq!(listed, std::slice::from_ref(&first));
    let approve = ApproveAdminRelationshipRequest { name: first.name.clone(), etag: first.etag.clone() };
    let approved = customer_client.relationships().approve_admin_relationship(approve).await.expect("approve");
    assert_eq!(approved.into_inner().state(), State::Active);

    // Another partner's relationship with the customer is the helpdesk's to read, and the client
    // asks why.
    let other = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let theirs = app.relate(&other, &customer, None).await;
    let ask = pc_api::relationship::v1::CheckAccessRequest {
        principal: String::new(),
        permission: "customerRelationships.get".to_owned(),
        resource: theirs.name,
    };
    let answer = partner_client.relationships().check_access(ask).await.expect("check access").into_inner();
    assert!(answer.allowed, "{answer:?}");
    assert_eq!((answer.role(), answer.admin_relationship), (Role::HelpdeskAgent, first.name));
}
