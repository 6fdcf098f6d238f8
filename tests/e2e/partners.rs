//! PartnerService partner methods: enrolment, reads, pages, updates with etags, state changes.

use pc_api::{
    partner::v1::{partner::State, *},
    types::v1::Cloud,
};
use pc_tests::{Reply, audit_actions, expect_code, new_partner, reason, spawn_app, violated_field};
use prost_types::FieldMask;
use tonic::Code;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

#[tokio::test]
async fn create_partner_enrols_an_active_partner_that_get_returns() {
    let app = spawn_app().await;
    let input = new_partner(ProgramRole::IndirectProvider, Cloud::Global);
    let created = app
        .partners()
        .create_partner(CreatePartnerRequest { partner: Some(input.clone()), ..Default::default() })
        .await
        .reply();
    assert!(created.name.starts_with("partners/"));
    assert_eq!(created.display_name, input.display_name);
    assert_eq!(created.tenant_id, input.tenant_id);
    assert_eq!(created.state(), State::Active);
    assert_eq!(created.program_role(), ProgramRole::IndirectProvider);
    assert!(created.create_time.is_some() && !created.etag.is_empty());

    let fetched = app
        .partners_as(Some(&created.name))
        .get_partner(GetPartnerRequest { name: created.name.clone() })
        .await
        .reply();
    assert_eq!(fetched, created);
    assert_eq!(audit_actions(&app, &created.name).await, ["CreatePartner"]);
}

#[tokio::test]
async fn create_partner_with_an_enrolled_tenant_is_already_exists_but_other_clouds_are_separate() {
    let app = spawn_app().await;
    let first = new_partner(ProgramRole::DirectBillPartner, Cloud::Global);
    app.partners()
        .create_partner(CreatePartnerRequest { partner: Some(first.clone()), ..Default::default() })
        .await
        .unwrap();

    let again = Partner { display_name: "Someone else".into(), ..first.clone() };
    expect_code(
        app.partners().create_partner(CreatePartnerRequest { partner: Some(again), ..Default::default() }).await,
        Code::AlreadyExists,
    );

    let china = Partner { cloud: Cloud::China as i32, ..first };
    app.partners().create_partner(CreatePartnerRequest { partner: Some(china), ..Default::default() }).await.unwrap();
}

#[tokio::test]
async fn create_partner_rejects_each_invalid_field_by_name_and_writes_nothing() {
    let app = spawn_app().await;
    let valid = new_partner(ProgramRole::IndirectReseller, Cloud::Germany);
    let cases: Vec<(&str, Option<Partner>)> = vec![
        ("partner", None),
        ("partner.display_name", Some(Partner { display_name: " ".into(), ..valid.clone() })),
        ("partner.display_name", Some(Partner { display_name: "x".repeat(201), ..valid.clone() })),
        ("partner.tenant_id", Some(Partner { tenant_id: "not-a-uuid".into(), ..valid.clone() })),
        ("partner.country_code", Some(Partner { country_code: "ZZ".into(), ..valid.clone() })),
        ("partner.country_code", Some(Partner { country_code: "us".into(), ..valid.clone() })),
        ("partner.cloud", Some(Partner { cloud: 0, ..valid.clone() })),
        ("partner.cloud", Some(Partner { cloud: 42, ..valid.clone() })),
        ("partner.program_role", Some(Partner { program_role: 0, ..valid.clone() })),
    ];
    for (field, partner) in cases {
        let status = expect_code(
            app.partners().create_partner(CreatePartnerRequest { partner, ..Default::default() }).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_field(&status), field, "{status:?}");
    }
    let listed = app.partners().list_partners(ListPartnersRequest::default()).await.reply();
    assert!(listed.partners.is_empty(), "a refused create wrote something");
}

#[tokio::test]
async fn get_partner_of_an_unknown_or_malformed_name_is_not_found_or_invalid() {
    let app = spawn_app().await;
    let unknown = format!("partners/{}", uuid::Uuid::now_v7());
    expect_code(app.partners().get_partner(GetPartnerRequest { name: unknown }).await, Code::NotFound);
    let customer_name = format!("customers/{}", uuid::Uuid::now_v7());
    for name in ["", "partners/nope", customer_name.as_str()] {
        let status = expect_code(
            app.partners().get_partner(GetPartnerRequest { name: name.into() }).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_field(&status), "name");
    }
}

#[tokio::test]
async fn list_partners_pages_through_every_partner_in_creation_order() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await.name);
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .partners()
            .list_partners(ListPartnersRequest { page_size: 3, page_token, ..Default::default() })
            .await
            .reply();
        pages += 1;
        assert!(page.partners.len() <= 3);
        seen.extend(page.partners.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);
}

#[tokio::test]
async fn list_partners_filters_by_cloud_role_and_state() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let gov = app.enrol(ProgramRole::IndirectReseller, Cloud::UsGovernment).await;
    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: reseller.name.clone(), etag: String::new() })
        .await
        .unwrap();

    let names = |request: ListPartnersRequest| {
        let mut client = app.partners();
        async move {
            let listed = client.list_partners(request).await.reply();
            listed.partners.into_iter().map(|p| p.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(ListPartnersRequest { cloud: Cloud::UsGovernment as i32, ..Default::default() }).await,
        [gov.name.as_str()]
    );
    assert_eq!(
        names(ListPartnersRequest { program_role: ProgramRole::IndirectReseller as i32, ..Default::default() }).await,
        [reseller.name.clone(), gov.name.clone()]
    );
    assert_eq!(
        names(ListPartnersRequest { cloud: Cloud::Global as i32, state: State::Active as i32, ..Default::default() })
            .await,
        [provider.name]
    );
    assert_eq!(
        names(ListPartnersRequest { state: State::Suspended as i32, ..Default::default() }).await,
        [reseller.name]
    );
}

#[tokio::test]
async fn list_partners_refuses_bad_page_sizes_and_tokens_of_another_query() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    }
    let status = expect_code(
        app.partners().list_partners(ListPartnersRequest { page_size: -1, ..Default::default() }).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_field(&status), "page_size");

    let first = app.partners().list_partners(ListPartnersRequest { page_size: 1, ..Default::default() }).await.reply();
    assert!(!first.next_page_token.is_empty());
    let other_filter = ListPartnersRequest {
        page_size: 1,
        page_token: first.next_page_token.clone(),
        cloud: Cloud::China as i32,
        ..Default::default()
    };
    let status = expect_code(app.partners().list_partners(other_filter).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "page_token");
    let forged = ListPartnersRequest { page_token: "AAAA".into(), ..Default::default() };
    expect_code(app.partners().list_partners(forged).await, Code::InvalidArgument);
}

#[tokio::test]
async fn update_partner_changes_only_the_masked_fields_and_bumps_the_etag() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let request = UpdatePartnerRequest {
        partner: Some(Partner {
            name: partner.name.clone(),
            display_name: "Renamed Ltd".into(),
            country_code: "FR".into(),
            etag: partner.etag.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["display_name"]),
    };
    let updated = app.partners().update_partner(request).await.reply();
    assert_eq!(updated.display_name, "Renamed Ltd");
    assert_eq!(updated.country_code, partner.country_code, "country_code was not in the mask");
    assert_ne!(updated.etag, partner.etag);
    assert_eq!(updated.tenant_id, partner.tenant_id);

    let fetched = app.partners().get_partner(GetPartnerRequest { name: partner.name.clone() }).await.reply();
    assert_eq!(fetched, updated);
    assert_eq!(audit_actions(&app, &partner.name).await, ["CreatePartner", "UpdatePartner"]);
}

#[tokio::test]
async fn update_partner_with_a_stale_etag_is_aborted_and_changes_nothing() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let rename = |display_name: &str, etag: &str| UpdatePartnerRequest {
        partner: Some(Partner {
            name: partner.name.clone(),
            display_name: display_name.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: mask(&["display_name"]),
    };
    app.partners().update_partner(rename("First", &partner.etag)).await.unwrap();
    expect_code(app.partners().update_partner(rename("Second", &partner.etag)).await, Code::Aborted);

    let fetched = app.partners().get_partner(GetPartnerRequest { name: partner.name.clone() }).await.reply();
    assert_eq!(fetched.display_name, "First");
    let status = expect_code(app.partners().update_partner(rename("Third", "garbage")).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "partner.etag");
}

#[tokio::test]
async fn update_partner_refuses_output_only_immutable_and_unknown_fields() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    for path in ["state", "tenant_id", "cloud", "program_role", "nonsense"] {
        let request = UpdatePartnerRequest { partner: Some(partner.clone()), update_mask: mask(&[path]) };
        let status = expect_code(app.partners().update_partner(request).await, Code::InvalidArgument);
        assert_eq!(violated_field(&status), "update_mask", "{path}");
    }
    let bad_value = UpdatePartnerRequest {
        partner: Some(Partner { country_code: "Germany".into(), ..partner.clone() }),
        update_mask: mask(&["country_code"]),
    };
    let status = expect_code(app.partners().update_partner(bad_value).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "partner.country_code");
    let unknown = UpdatePartnerRequest {
        partner: Some(Partner { name: format!("partners/{}", uuid::Uuid::now_v7()), ..partner }),
        update_mask: mask(&["display_name"]),
    };
    expect_code(app.partners().update_partner(unknown).await, Code::NotFound);
}

#[tokio::test]
async fn suspend_and_reactivate_move_between_states_and_refuse_other_transitions() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let suspend = || SuspendPartnerRequest { name: partner.name.clone(), etag: String::new() };
    let reactivate = || ReactivatePartnerRequest { name: partner.name.clone(), etag: String::new() };

    let status = expect_code(app.partners().reactivate_partner(reactivate()).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVALID_TRANSITION");

    let suspended = app.partners().suspend_partner(suspend()).await.reply();
    assert_eq!(suspended.state(), State::Suspended);
    let status = expect_code(app.partners().suspend_partner(suspend()).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVALID_TRANSITION");

    let stale = ReactivatePartnerRequest { name: partner.name.clone(), etag: partner.etag.clone() };
    expect_code(app.partners().reactivate_partner(stale).await, Code::Aborted);
    let current = ReactivatePartnerRequest { name: partner.name.clone(), etag: suspended.etag.clone() };
    let active = app.partners().reactivate_partner(current).await.reply();
    assert_eq!(active.state(), State::Active);
    assert_eq!(audit_actions(&app, &partner.name).await, ["CreatePartner", "SuspendPartner", "ReactivatePartner"]);
}

#[tokio::test]
async fn partners_and_customers_read_the_directory_but_only_operators_change_it() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;

    for subject in [partner.name.as_str(), customer.name.as_str()] {
        let mut client = app.partners_as(Some(subject));
        let fetched = client.get_partner(GetPartnerRequest { name: partner.name.clone() }).await.reply();
        assert_eq!(fetched.name, partner.name);
        assert_eq!(client.list_partners(ListPartnersRequest::default()).await.reply().partners.len(), 1);

        let create = CreatePartnerRequest {
            partner: Some(new_partner(ProgramRole::IndirectProvider, Cloud::Global)),
            ..Default::default()
        };
        expect_code(client.create_partner(create).await, Code::PermissionDenied);
        let update = UpdatePartnerRequest {
            partner: Some(Partner { display_name: "Mine now".into(), ..partner.clone() }),
            update_mask: mask(&["display_name"]),
        };
        expect_code(client.update_partner(update).await, Code::PermissionDenied);
        let suspend = SuspendPartnerRequest { name: partner.name.clone(), etag: String::new() };
        expect_code(client.suspend_partner(suspend).await, Code::PermissionDenied);
        let reactivate = ReactivatePartnerRequest { name: partner.name.clone(), etag: String::new() };
        expect_code(client.reactivate_partner(reactivate).await, Code::PermissionDenied);
    }
    let unchanged = app.partners().get_partner(GetPartnerRequest { name: partner.name.clone() }).await.reply();
    assert_eq!(unchanged, partner);
}
