//! PartnerService customer methods: creation, rule 1 (no partner as customer), uniqueness per
//! cloud, and who may read which customer.

use pc_api::{partner::v1::*, types::v1::Cloud};
use pc_tests::{Reply, audit_actions, expect_code, new_customer, reason, spawn_app, violated_field};
use tonic::Code;

#[tokio::test]
async fn an_operator_creates_a_customer_and_reads_it_back() {
    let app = spawn_app().await;
    let input = Customer { primary_domain: "Contoso.COM".into(), ..new_customer(Cloud::Global) };
    let created = app
        .partners()
        .create_customer(CreateCustomerRequest { customer: Some(input.clone()), ..Default::default() })
        .await
        .reply();
    assert!(created.name.starts_with("customers/"));
    assert_eq!(created.primary_domain, "contoso.com", "domains are stored lower case");
    assert_eq!(created.tenant_id, input.tenant_id);
    let fetched = app.partners().get_customer(GetCustomerRequest { name: created.name.clone() }).await.reply();
    assert_eq!(fetched, created);
    assert_eq!(audit_actions(&app, &created.name).await, ["CreateCustomer"]);
}

#[tokio::test]
async fn a_partners_tenant_cannot_be_a_customer_in_the_same_cloud() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let as_customer = Customer { tenant_id: partner.tenant_id.clone(), ..new_customer(Cloud::Global) };
    let status = expect_code(
        app.partners()
            .create_customer(CreateCustomerRequest { customer: Some(as_customer.clone()), ..Default::default() })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_AS_CUSTOMER");
    assert!(status.message().contains("PARTNER_AS_CUSTOMER"));
    let listed = app.partners().list_customers(ListCustomersRequest::default()).await.reply();
    assert!(listed.customers.is_empty(), "the refused customer was written");

    // The same tenant in another cloud is another tenant.
    let elsewhere = Customer { cloud: Cloud::Germany as i32, ..as_customer };
    app.partners()
        .create_customer(CreateCustomerRequest { customer: Some(elsewhere), ..Default::default() })
        .await
        .unwrap();
}

#[tokio::test]
async fn tenants_and_domains_are_unique_within_a_cloud() {
    let app = spawn_app().await;
    let first = app.customer_by("operator", Cloud::Global).await;
    let same_tenant = Customer { tenant_id: first.tenant_id.clone(), ..new_customer(Cloud::Global) };
    let same_domain = Customer { primary_domain: first.primary_domain.to_uppercase(), ..new_customer(Cloud::Global) };
    for customer in [same_tenant, same_domain.clone()] {
        expect_code(
            app.partners()
                .create_customer(CreateCustomerRequest { customer: Some(customer), ..Default::default() })
                .await,
            Code::AlreadyExists,
        );
    }
    let other_cloud = Customer { cloud: Cloud::China as i32, ..same_domain };
    app.partners()
        .create_customer(CreateCustomerRequest { customer: Some(other_cloud), ..Default::default() })
        .await
        .unwrap();
}

#[tokio::test]
async fn create_customer_rejects_each_invalid_field_by_name() {
    let app = spawn_app().await;
    let valid = new_customer(Cloud::Global);
    let cases: Vec<(&str, Option<Customer>)> = vec![
        ("customer", None),
        ("customer.display_name", Some(Customer { display_name: String::new(), ..valid.clone() })),
        (
            "customer.tenant_id",
            Some(Customer { tenant_id: "00000000-0000-0000-0000-000000000000".into(), ..valid.clone() }),
        ),
        ("customer.primary_domain", Some(Customer { primary_domain: "localhost".into(), ..valid.clone() })),
        ("customer.primary_domain", Some(Customer { primary_domain: "bad_domain.com".into(), ..valid.clone() })),
        ("customer.country_code", Some(Customer { country_code: "DEU".into(), ..valid.clone() })),
        ("customer.cloud", Some(Customer { cloud: 0, ..valid.clone() })),
    ];
    for (field, customer) in cases {
        let status = expect_code(
            app.partners().create_customer(CreateCustomerRequest { customer, ..Default::default() }).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_field(&status), field, "{status:?}");
    }
}

#[tokio::test]
async fn customers_cannot_create_customers() {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let request = CreateCustomerRequest { customer: Some(new_customer(Cloud::Global)), ..Default::default() };
    expect_code(app.partners_as(Some(&customer.name)).create_customer(request).await, Code::PermissionDenied);
}

#[tokio::test]
async fn suspended_unknown_and_other_cloud_partners_cannot_create_customers() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let create = |cloud| CreateCustomerRequest { customer: Some(new_customer(cloud)), ..Default::default() };

    let status = expect_code(
        app.partners_as(Some(&partner.name)).create_customer(create(Cloud::China)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "CROSS_CLOUD");

    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: partner.name.clone(), etag: String::new() })
        .await
        .unwrap();
    let status = expect_code(
        app.partners_as(Some(&partner.name)).create_customer(create(Cloud::Global)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_SUSPENDED");

    let ghost = format!("partners/{}", uuid::Uuid::now_v7());
    expect_code(app.partners_as(Some(&ghost)).create_customer(create(Cloud::Global)).await, Code::PermissionDenied);
}

#[tokio::test]
async fn a_customer_is_visible_to_operators_itself_and_the_partner_that_created_it_only() {
    let app = spawn_app().await;
    let creator = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by(&creator.name, Cloud::Global).await;
    let other_customer = app.customer_by("operator", Cloud::Global).await;
    let get = |name: &str| GetCustomerRequest { name: name.to_owned() };

    for subject in ["operator", creator.name.as_str(), customer.name.as_str()] {
        let fetched = app.partners_as(Some(subject)).get_customer(get(&customer.name)).await.reply();
        assert_eq!(fetched, customer, "{subject}");
    }
    expect_code(app.partners_as(Some(&stranger.name)).get_customer(get(&customer.name)).await, Code::PermissionDenied);
    expect_code(
        app.partners_as(Some(&other_customer.name)).get_customer(get(&customer.name)).await,
        Code::PermissionDenied,
    );

    // Existence is not revealed to those who may not see it.
    let unknown = format!("customers/{}", uuid::Uuid::now_v7());
    expect_code(app.partners_as(Some(&stranger.name)).get_customer(get(&unknown)).await, Code::PermissionDenied);
    expect_code(app.partners().get_customer(get(&unknown)).await, Code::NotFound);
}

#[tokio::test]
async fn list_customers_shows_each_caller_only_what_it_may_see_page_by_page() {
    let app = spawn_app().await;
    let creator = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(app.customer_by(&creator.name, Cloud::Global).await.name);
    }
    let by_operator = app.customer_by("operator", Cloud::Global).await;
    let german = app.customer_by("operator", Cloud::Germany).await;

    let list_all = |subject: String, cloud: Cloud| {
        let mut client = app.partners_as(Some(&subject));
        async move {
            let mut names = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_customers(ListCustomersRequest { page_size: 2, page_token, cloud: cloud as i32 })
                    .await
                    .reply();
                names.extend(page.customers.into_iter().map(|c| c.name));
                if page.next_page_token.is_empty() {
                    return names;
                }
                page_token = page.next_page_token;
            }
        }
    };
    assert_eq!(list_all(creator.name.clone(), Cloud::Unspecified).await, mine);
    assert!(list_all(stranger.name.clone(), Cloud::Unspecified).await.is_empty());
    assert_eq!(list_all(by_operator.name.clone(), Cloud::Unspecified).await, [by_operator.name.as_str()]);
    let everything = list_all("operator".into(), Cloud::Unspecified).await;
    assert_eq!(everything.len(), 7);
    assert_eq!(list_all("operator".into(), Cloud::Germany).await, [german.name]);
}

/// Whether `subject` may read `customer`, asserting that GetCustomer and ListCustomers agree.
async fn sees(app: &pc_tests::TestApp, subject: &str, customer: &Customer) -> bool {
    let mut client = app.partners_as(Some(subject));
    let got = client.get_customer(GetCustomerRequest { name: customer.name.clone() }).await;
    let listed = client.list_customers(ListCustomersRequest { page_size: 1000, ..Default::default() }).await;
    let in_list = listed.reply().customers.iter().any(|c| c.name == customer.name);
    match got {
        Ok(got) => {
            assert_eq!(got.into_inner(), *customer);
            assert!(in_list, "{subject} reads {} but does not list it", customer.name);
            true
        }
        Err(status) => {
            assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            pc_tests::assert_error_info(&status);
            assert!(!in_list, "{subject} lists {} but may not read it", customer.name);
            false
        }
    }
}

#[tokio::test]
async fn asking_is_not_being_granted_a_partner_reads_a_customer_only_through_an_active_relationship() {
    use pc_api::relationship::v1::*;
    let app = spawn_app().await;
    let creator = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let asker = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    app.link(&provider, &reseller).await;
    let customer = app.customer_by(&creator.name, Cloud::Global).await;
    let as_customer = || app.relationships_as(Some(&customer.name));

    // The creator's record is its own until the customer accepts someone.
    assert!(sees(&app, &creator.name, &customer).await);
    assert!(!sees(&app, &asker.name, &customer).await, "a stranger");

    let pending = app.ask(&asker, &customer, None).await;
    assert!(!sees(&app, &asker.name, &customer).await, "PENDING");
    as_customer()
        .decline_customer_relationship(DeclineCustomerRelationshipRequest { name: pending.name, etag: String::new() })
        .await
        .unwrap();
    assert!(!sees(&app, &asker.name, &customer).await, "DECLINED");

    let active = app.relate(&asker, &customer, None).await;
    assert!(sees(&app, &asker.name, &customer).await, "ACTIVE");
    assert!(!sees(&app, &creator.name, &customer).await, "the creator, once another partner is ACTIVE");

    let resold = app.relate(&reseller, &customer, Some(&provider)).await;
    assert!(sees(&app, &reseller.name, &customer).await, "ACTIVE reseller");
    assert!(sees(&app, &provider.name, &customer).await, "the provider that bills an ACTIVE reseller");

    for relationship in [active, resold] {
        as_customer()
            .end_customer_relationship(EndCustomerRelationshipRequest { name: relationship.name, etag: String::new() })
            .await
            .unwrap();
    }
    for (partner, state) in [(&asker, "ENDED"), (&reseller, "ENDED reseller"), (&provider, "ENDED provider")] {
        assert!(!sees(&app, &partner.name, &customer).await, "{state}");
    }
    assert!(sees(&app, &creator.name, &customer).await, "the creator, with nobody ACTIVE again");
    assert!(sees(&app, &customer.name, &customer).await, "the customer itself");
}

#[tokio::test]
async fn a_taken_tenant_or_domain_says_nothing_of_the_customer_that_took_it() {
    let app = spawn_app().await;
    let first = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let second = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let claimed = app.customer_by(&first.name, Cloud::Global).await;
    for clash in [
        Customer { tenant_id: claimed.tenant_id.clone(), ..new_customer(Cloud::Global) },
        Customer { primary_domain: claimed.primary_domain.clone(), ..new_customer(Cloud::Global) },
    ] {
        let request = CreateCustomerRequest { customer: Some(clash), ..Default::default() };
        let status =
            expect_code(app.partners_as(Some(&second.name)).create_customer(request).await, Code::AlreadyExists);
        let said = format!("{status:?}");
        for secret in [&claimed.name, &first.name, &claimed.display_name] {
            assert!(!said.contains(secret.as_str()), "{said} reveals {secret}");
        }
    }
    assert!(!sees(&app, &second.name, &claimed).await, "a clash grants nothing");
}
