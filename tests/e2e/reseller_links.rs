//! RelationshipService reseller links: the two-tier model between indirect providers and
//! indirect resellers.

use pc_api::{partner::v1::*, relationship::v1::reseller_link::State, relationship::v1::*, types::v1::Cloud};
use pc_tests::{Reply, TestApp, audit_actions, expect_code, reason, spawn_app, violated_field};
use tonic::Code;

fn invite(provider: &Partner, reseller: &Partner) -> InviteResellerRequest {
    InviteResellerRequest { provider: provider.name.clone(), reseller: reseller.name.clone(), ..Default::default() }
}

fn accept(name: &str) -> AcceptResellerLinkRequest {
    AcceptResellerLinkRequest { name: name.to_owned(), etag: String::new() }
}

fn decline(name: &str) -> DeclineResellerLinkRequest {
    DeclineResellerLinkRequest { name: name.to_owned(), etag: String::new() }
}

fn end(name: &str) -> EndResellerLinkRequest {
    EndResellerLinkRequest { name: name.to_owned(), etag: String::new() }
}

async fn provider_and_reseller(app: &TestApp, cloud: Cloud) -> (Partner, Partner) {
    (app.enrol(ProgramRole::IndirectProvider, cloud).await, app.enrol(ProgramRole::IndirectReseller, cloud).await)
}

#[tokio::test]
async fn a_provider_invites_the_reseller_accepts_and_either_side_ends() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let invited =
        app.relationships_as(Some(&provider.name)).invite_reseller(invite(&provider, &reseller)).await.reply();
    assert!(invited.name.starts_with("resellerLinks/"));
    assert_eq!(
        (invited.state(), invited.provider.as_str(), invited.reseller.as_str()),
        (State::Invited, provider.name.as_str(), reseller.name.as_str())
    );
    assert!(invited.accept_time.is_none() && invited.end_time.is_none());

    let accepted = app.relationships_as(Some(&reseller.name)).accept_reseller_link(accept(&invited.name)).await.reply();
    assert_eq!(accepted.state(), State::Active);
    assert!(accepted.accept_time.is_some());

    let ended = app.relationships_as(Some(&provider.name)).end_reseller_link(end(&invited.name)).await.reply();
    assert_eq!(ended.state(), State::Ended);
    assert!(ended.end_time.is_some());
    let fetched = app
        .relationships_as(Some(&reseller.name))
        .get_reseller_link(GetResellerLinkRequest { name: invited.name.clone() })
        .await
        .reply();
    assert_eq!(fetched, ended);
    assert_eq!(audit_actions(&app, &invited.name).await, ["InviteReseller", "AcceptResellerLink", "EndResellerLink"]);
}

#[tokio::test]
async fn the_reseller_may_end_and_a_declined_invitation_is_final() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let active = app.link(&provider, &reseller).await;
    let ended = app.relationships_as(Some(&reseller.name)).end_reseller_link(end(&active.name)).await.reply();
    assert_eq!(ended.state(), State::Ended);

    let invited = app.relationships().invite_reseller(invite(&provider, &reseller)).await.reply();
    let mut as_reseller = app.relationships_as(Some(&reseller.name));
    let declined = as_reseller.decline_reseller_link(decline(&invited.name)).await.reply();
    assert_eq!(declined.state(), State::Declined);
    assert!(declined.end_time.is_some());
    for status in [
        expect_code(as_reseller.accept_reseller_link(accept(&invited.name)).await, Code::FailedPrecondition),
        expect_code(as_reseller.decline_reseller_link(decline(&invited.name)).await, Code::FailedPrecondition),
        expect_code(as_reseller.end_reseller_link(end(&invited.name)).await, Code::FailedPrecondition),
        expect_code(as_reseller.end_reseller_link(end(&active.name)).await, Code::FailedPrecondition),
    ] {
        assert_eq!(reason(&status), "INVALID_TRANSITION");
    }
}

#[tokio::test]
async fn invitations_need_an_active_provider_and_reseller_of_one_cloud() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let direct = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let gov_reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::UsGovernment).await;
    let suspended_reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: suspended_reseller.name.clone(), etag: String::new() })
        .await
        .unwrap();

    let refusals = [
        (invite(&provider, &direct), "ROLE_NOT_ALLOWED"),
        (invite(&reseller, &provider), "ROLE_NOT_ALLOWED"),
        (invite(&direct, &reseller), "ROLE_NOT_ALLOWED"),
        (invite(&provider, &gov_reseller), "CROSS_CLOUD"),
        (invite(&provider, &suspended_reseller), "PARTNER_SUSPENDED"),
    ];
    for (request, expected) in refusals {
        let status = expect_code(app.relationships().invite_reseller(request.clone()).await, Code::FailedPrecondition);
        assert_eq!(reason(&status), expected, "{request:?}");
        assert!(status.message().contains(expected));
    }
    let listed = app.relationships().list_reseller_links(ListResellerLinksRequest::default()).await.reply();
    assert!(listed.reseller_links.is_empty(), "a refused invitation was written");

    let unknown = Partner { name: format!("partners/{}", uuid::Uuid::now_v7()), ..reseller.clone() };
    expect_code(app.relationships().invite_reseller(invite(&provider, &unknown)).await, Code::NotFound);
    let status =
        expect_code(app.relationships().invite_reseller(invite(&provider, &provider)).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "reseller");
    let bad =
        InviteResellerRequest { provider: "partners/x".into(), reseller: reseller.name.clone(), ..Default::default() };
    assert_eq!(
        violated_field(&expect_code(app.relationships().invite_reseller(bad).await, Code::InvalidArgument)),
        "provider"
    );
}

#[tokio::test]
async fn a_suspended_side_cannot_accept_an_open_invitation() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let invited = app.relationships().invite_reseller(invite(&provider, &reseller)).await.reply();
    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: provider.name.clone(), etag: String::new() })
        .await
        .unwrap();
    let status = expect_code(
        app.relationships_as(Some(&reseller.name)).accept_reseller_link(accept(&invited.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_SUSPENDED");
}

#[tokio::test]
async fn one_live_link_per_pair_and_a_new_one_after_it_ends() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let first = app.relationships().invite_reseller(invite(&provider, &reseller)).await.reply();
    expect_code(app.relationships().invite_reseller(invite(&provider, &reseller)).await, Code::AlreadyExists);
    app.relationships_as(Some(&reseller.name)).accept_reseller_link(accept(&first.name)).await.unwrap();
    expect_code(app.relationships().invite_reseller(invite(&provider, &reseller)).await, Code::AlreadyExists);
    app.relationships().end_reseller_link(end(&first.name)).await.unwrap();
    let second = app.relationships().invite_reseller(invite(&provider, &reseller)).await.reply();
    assert_ne!(second.name, first.name);
}

#[tokio::test]
async fn a_reseller_works_with_several_providers_and_each_side_lists_its_own() {
    let app = spawn_app().await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let other_reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let mut providers = Vec::new();
    for _ in 0..3 {
        let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
        app.link(&provider, &reseller).await;
        providers.push(provider);
    }
    app.link(&providers[0], &other_reseller).await;
    let pending = app.relationships().invite_reseller(invite(&providers[1], &other_reseller)).await.reply();

    let list = |subject: String, request: ListResellerLinksRequest| {
        let mut client = app.relationships_as(Some(&subject));
        async move {
            let mut links = Vec::new();
            let mut request = ListResellerLinksRequest { page_size: 2, ..request };
            loop {
                let page = client.list_reseller_links(request.clone()).await.reply();
                links.extend(page.reseller_links);
                if page.next_page_token.is_empty() {
                    return links;
                }
                request.page_token = page.next_page_token;
            }
        }
    };
    let mine =
        list(reseller.name.clone(), ListResellerLinksRequest { reseller: reseller.name.clone(), ..Default::default() })
            .await;
    let my_providers: Vec<_> = mine.iter().map(|l| l.provider.clone()).collect();
    assert_eq!(my_providers, providers.iter().map(|p| p.name.clone()).collect::<Vec<_>>());
    assert!(mine.iter().all(|l| l.state() == State::Active));

    let resellers_of_first = list(
        providers[0].name.clone(),
        ListResellerLinksRequest { provider: providers[0].name.clone(), ..Default::default() },
    )
    .await;
    assert_eq!(
        resellers_of_first.iter().map(|l| l.reseller.as_str()).collect::<Vec<_>>(),
        [reseller.name.as_str(), other_reseller.name.as_str()]
    );

    // A partner sees only links it is party to, whatever it filters on.
    let invited_only = list(
        other_reseller.name.clone(),
        ListResellerLinksRequest { state: State::Invited as i32, ..Default::default() },
    )
    .await;
    assert_eq!(invited_only.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), [pending.name.as_str()]);
    let snooping = list(
        other_reseller.name.clone(),
        ListResellerLinksRequest { reseller: reseller.name.clone(), ..Default::default() },
    )
    .await;
    assert!(snooping.is_empty());
    assert_eq!(list("operator".into(), ListResellerLinksRequest::default()).await.len(), 5);
}

#[tokio::test]
async fn only_the_parties_act_on_a_link_and_only_the_reseller_answers() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let other_provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;

    expect_code(
        app.relationships_as(Some(&other_provider.name)).invite_reseller(invite(&provider, &reseller)).await,
        Code::PermissionDenied,
    );
    expect_code(
        app.relationships_as(Some(&reseller.name)).invite_reseller(invite(&provider, &reseller)).await,
        Code::PermissionDenied,
    );
    let invited =
        app.relationships_as(Some(&provider.name)).invite_reseller(invite(&provider, &reseller)).await.reply();

    let mut as_provider = app.relationships_as(Some(&provider.name));
    expect_code(as_provider.accept_reseller_link(accept(&invited.name)).await, Code::PermissionDenied);
    expect_code(as_provider.decline_reseller_link(decline(&invited.name)).await, Code::PermissionDenied);
    for outsider in [other_provider.name.as_str(), customer.name.as_str()] {
        let mut client = app.relationships_as(Some(outsider));
        expect_code(
            client.get_reseller_link(GetResellerLinkRequest { name: invited.name.clone() }).await,
            Code::PermissionDenied,
        );
        expect_code(client.accept_reseller_link(accept(&invited.name)).await, Code::PermissionDenied);
        expect_code(client.end_reseller_link(end(&invited.name)).await, Code::PermissionDenied);
    }
    expect_code(
        app.relationships_as(Some(&customer.name)).list_reseller_links(ListResellerLinksRequest::default()).await,
        Code::PermissionDenied,
    );
    let unknown = format!("resellerLinks/{}", uuid::Uuid::now_v7());
    expect_code(
        app.relationships().get_reseller_link(GetResellerLinkRequest { name: unknown.clone() }).await,
        Code::NotFound,
    );
    expect_code(
        app.relationships_as(Some(&provider.name)).get_reseller_link(GetResellerLinkRequest { name: unknown }).await,
        Code::PermissionDenied,
    );
    // An operator may act for anyone.
    let accepted = app.relationships().accept_reseller_link(accept(&invited.name)).await.reply();
    assert_eq!(accepted.state(), State::Active);
}

#[tokio::test]
async fn a_stale_etag_on_a_transition_is_aborted() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let active = app.link(&provider, &reseller).await;
    // Revision 1 is the link as invited, before the accept.
    let stale = EndResellerLinkRequest { name: active.name.clone(), etag: "W/\"r1\"".into() };
    expect_code(app.relationships().end_reseller_link(stale).await, Code::Aborted);
    let current = EndResellerLinkRequest { name: active.name.clone(), etag: active.etag.clone() };
    assert_eq!(app.relationships().end_reseller_link(current).await.reply().state(), State::Ended);
}

#[tokio::test]
async fn racing_invitations_for_one_pair_leave_exactly_one_link() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    let calls = (0..8).map(|_| {
        let mut client = app.relationships();
        let request = invite(&provider, &reseller);
        tokio::spawn(async move { client.invite_reseller(request).await })
    });
    let outcomes = futures_join(calls).await;
    let created = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(status) = outcome {
            assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
            pc_tests::assert_error_info(status);
        }
    }
    let listed = app.relationships().list_reseller_links(ListResellerLinksRequest::default()).await.reply();
    assert_eq!(listed.reseller_links.len(), 1);
}

#[tokio::test]
async fn an_accept_racing_an_end_leaves_one_consistent_outcome() {
    let app = spawn_app().await;
    let (provider, reseller) = provider_and_reseller(&app, Cloud::Global).await;
    for _ in 0..6 {
        let invited = app.relationships().invite_reseller(invite(&provider, &reseller)).await.reply();
        let mut as_reseller = app.relationships_as(Some(&reseller.name));
        let mut as_provider = app.relationships_as(Some(&provider.name));
        let (accept_name, end_name) = (invited.name.clone(), invited.name.clone());
        let accepting = tokio::spawn(async move { as_reseller.accept_reseller_link(accept(&accept_name)).await });
        let ending = tokio::spawn(async move { as_provider.end_reseller_link(end(&end_name)).await });
        let (accepted, ended) = (accepting.await.unwrap(), ending.await.unwrap());
        for loser in [accepted.as_ref().err(), ended.as_ref().err()].into_iter().flatten() {
            assert!(matches!(loser.code(), Code::Aborted | Code::FailedPrecondition), "{loser:?}");
        }
        let last =
            app.relationships().get_reseller_link(GetResellerLinkRequest { name: invited.name.clone() }).await.reply();
        let expected = match (accepted.is_ok(), ended.is_ok()) {
            (true, false) => State::Active,
            (_, true) => State::Ended,
            (false, false) => panic!("both lost: {accepted:?} {ended:?}"),
        };
        assert_eq!(last.state(), expected);
        let successes = usize::from(accepted.is_ok()) + usize::from(ended.is_ok());
        assert_eq!(audit_actions(&app, &invited.name).await.len(), 1 + successes);
        if last.state() == State::Active {
            app.relationships().end_reseller_link(end(&invited.name)).await.unwrap();
        }
    }
}

/// Awaits every spawned call, in order.
async fn futures_join<T>(
    calls: impl Iterator<Item = tokio::task::JoinHandle<Result<tonic::Response<T>, tonic::Status>>>,
) -> Vec<Result<T, tonic::Status>> {
    let mut outcomes = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        outcomes.push(call.await.unwrap().map(tonic::Response::into_inner));
    }
    outcomes
}
