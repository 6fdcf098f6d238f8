#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! The program's world, made through the API as its callers would: partners, customers, links,
//! relationships, subscriptions, support assignments, transfers and admin relationships.

use pc_api::channel::v1::{
    AcceptSupportAssignmentRequest, CreateSubscriptionRequest, CreateTransferRequest, ProductFamily,
    RegisterExternalSubscriptionRequest, RequestSupportRequest, SalesChannel, Subscription, SupportAssignment,
    Transfer,
};
use pc_api::partner::v1::{Customer, Partner, ProgramRole};
use pc_api::relationship::v1::{
    AcceptCustomerRelationshipRequest, AcceptResellerLinkRequest, AdminRelationship, ApproveAdminRelationshipRequest,
    CustomerRelationship, InviteResellerRequest, RequestAdminRelationshipRequest, RequestCustomerRelationshipRequest,
    ResellerLink, admin_relationship,
};
use pc_api::types::v1::Cloud;
use tonic::Status;

use crate::TestApp;

impl TestApp {
    /// `partner` sells `offer` to `customer` (needs an ACTIVE relationship).
    pub async fn sell(
        &self,
        partner: &Partner,
        customer: &Customer,
        offer: &str,
        family: ProductFamily,
    ) -> Subscription {
        self.channel_as(Some(&partner.name))
            .create_subscription(CreateSubscriptionRequest {
                subscription: Some(Subscription {
                    customer: customer.name.clone(),
                    offer_id: offer.to_owned(),
                    product_family: family as i32,
                    quantity: 10,
                    partner_of_record: partner.name.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create a subscription")
            .into_inner()
    }

    /// An INVITED reseller link: the provider invites.
    pub async fn invite(&self, provider: &Partner, reseller: &Partner) -> ResellerLink {
        self.relationships_as(Some(&provider.name))
            .invite_reseller(InviteResellerRequest {
                provider: provider.name.clone(),
                reseller: reseller.name.clone(),
                ..Default::default()
            })
            .await
            .expect("invite a reseller")
            .into_inner()
    }

    /// An ACTIVE reseller link: the provider invites, the reseller accepts.
    pub async fn link(&self, provider: &Partner, reseller: &Partner) -> ResellerLink {
        let invited = self.invite(provider, reseller).await;
        self.relationships_as(Some(&reseller.name))
            .accept_reseller_link(AcceptResellerLinkRequest { name: invited.name, etag: String::new() })
            .await
            .expect("accept the invitation")
            .into_inner()
    }

    /// A PENDING customer relationship: the partner asks (naming `provider` when it is a reseller).
    pub async fn ask(
        &self,
        partner: &Partner,
        customer: &Customer,
        provider: Option<&Partner>,
    ) -> CustomerRelationship {
        self.relationships_as(Some(&partner.name))
            .request_customer_relationship(RequestCustomerRelationshipRequest {
                partner: partner.name.clone(),
                customer: customer.name.clone(),
                indirect_provider: provider.map(|p| p.name.clone()).unwrap_or_default(),
                ..Default::default()
            })
            .await
            .expect("request a customer relationship")
            .into_inner()
    }

    /// An ACTIVE customer relationship: the partner asks (naming `provider` when it is a
    /// reseller), the customer accepts.
    pub async fn relate(
        &self,
        partner: &Partner,
        customer: &Customer,
        provider: Option<&Partner>,
    ) -> CustomerRelationship {
        let requested = self.ask(partner, customer, provider).await;
        self.relationships_as(Some(&customer.name))
            .accept_customer_relationship(AcceptCustomerRelationshipRequest {
                name: requested.name,
                etag: String::new(),
            })
            .await
            .expect("accept the relationship")
            .into_inner()
    }

    /// An ACTIVE support assignment: `supporter` asks to support `subscription`, `customer` accepts.
    pub async fn hire(
        &self,
        supporter: &Partner,
        subscription: &Subscription,
        customer: &Customer,
    ) -> SupportAssignment {
        let requested = self
            .channel_as(Some(&supporter.name))
            .request_support(RequestSupportRequest {
                subscription: subscription.name.clone(),
                partner: supporter.name.clone(),
                ..Default::default()
            })
            .await
            .expect("request support")
            .into_inner();
        self.channel_as(Some(&customer.name))
            .accept_support_assignment(AcceptSupportAssignmentRequest { name: requested.name, etag: String::new() })
            .await
            .expect("accept the support assignment")
            .into_inner()
    }

    /// A subscription `customer` bought from the vendor (VENDOR_DIRECT, no partner), registered by
    /// an operator.
    pub async fn bought_elsewhere(&self, customer: &Customer, quantity: i32) -> Subscription {
        self.channel()
            .register_external_subscription(RegisterExternalSubscriptionRequest {
                subscription: Some(Subscription {
                    customer: customer.name.clone(),
                    offer_id: "dynamics-365-sales".into(),
                    product_family: ProductFamily::Dynamics as i32,
                    quantity,
                    sales_channel: SalesChannel::VendorDirect as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("register a subscription bought elsewhere")
            .into_inner()
    }

    /// A PENDING transfer: `target` asks `source` for `subscriptions` of `customer` (all of the
    /// source's when empty), naming `provider` when the target is a reseller.
    pub async fn ask_transfer(
        &self,
        target: &Partner,
        source: &Partner,
        customer: &Customer,
        subscriptions: &[&Subscription],
        provider: Option<&Partner>,
    ) -> Transfer {
        self.channel_as(Some(&target.name))
            .create_transfer(transfer_request(target, source, customer, subscriptions, provider))
            .await
            .expect("ask for a transfer")
            .into_inner()
    }

    /// An APPROVAL_PENDING admin relationship: `partner` asks `customer` for `roles` for 90 days
    /// (see [`admin_request`]).
    pub async fn ask_admin(
        &self,
        partner: &Partner,
        customer: &Customer,
        roles: &[admin_relationship::Role],
    ) -> AdminRelationship {
        self.relationships_as(Some(&partner.name))
            .request_admin_relationship(admin_request(partner, customer, roles))
            .await
            .expect("ask for admin roles")
            .into_inner()
    }

    /// An ACTIVE admin relationship: `partner` asks for `roles`, `customer` approves.
    pub async fn grant_admin(
        &self,
        partner: &Partner,
        customer: &Customer,
        roles: &[admin_relationship::Role],
    ) -> AdminRelationship {
        let asked = self.ask_admin(partner, customer, roles).await;
        self.relationships_as(Some(&customer.name))
            .approve_admin_relationship(ApproveAdminRelationshipRequest { name: asked.name, etag: String::new() })
            .await
            .expect("approve the admin relationship")
            .into_inner()
    }

    /// Sets the deadline (`expire_time`) of the waiting resource `name` (a link, relationship,
    /// support assignment, transfer, or admin relationship, whose end time moves with it while
    /// ACTIVE) to `ago` before now, as if it had waited that long past it.
    pub async fn pass_deadline(&self, name: &str, ago: chrono::Duration) {
        use sea_orm::{
            ConnectionTrait,
            sea_query::{Alias, Expr, ExprTrait, Query},
        };
        let (collection, id) = name.split_once('/').expect("a resource name");
        let table = match collection {
            "resellerLinks" => "reseller_links",
            "customerRelationships" => "customer_relationships",
            "supportAssignments" => "support_assignments",
            "transfers" => "transfers",
            "adminRelationships" => "admin_relationships",
            other => panic!("{other} have no deadline"),
        };
        let id: uuid::Uuid = id.parse().expect("an id");
        let update = Query::update()
            .table(Alias::new(table))
            .value(Alias::new("expire_time"), pc_store::db::now() - ago)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        let updated = self.db.primary().execute(&update).await.unwrap();
        assert_eq!(updated.rows_affected(), 1, "{name} exists");
        if table == "admin_relationships" {
            let active_end = Query::update()
                .table(Alias::new(table))
                .value(Alias::new("end_time"), pc_store::db::now() - ago)
                .and_where(Expr::col(Alias::new("id")).eq(id))
                .and_where(Expr::col(Alias::new("state")).eq("ACTIVE"))
                .to_owned();
            self.db.primary().execute(&active_end).await.unwrap();
        }
    }

    /// Enrols a partner as operator and returns it.
    pub async fn enrol(&self, role: ProgramRole, cloud: Cloud) -> Partner {
        self.partners()
            .create_partner(pc_api::partner::v1::CreatePartnerRequest {
                partner: Some(new_partner(role, cloud)),
                ..Default::default()
            })
            .await
            .expect("enrol a partner")
            .into_inner()
    }

    /// Creates a customer as `subject` and returns it.
    pub async fn customer_by(&self, subject: &str, cloud: Cloud) -> Customer {
        self.partners_as(Some(subject))
            .create_customer(pc_api::partner::v1::CreateCustomerRequest {
                customer: Some(new_customer(cloud)),
                ..Default::default()
            })
            .await
            .expect("create a customer")
            .into_inner()
    }

    /// CreateCustomer by the operator with `request_id` (AIP-155), always with the same customer
    /// for one id: within the key's window a repeat returns the first customer again; run anew, it
    /// is ALREADY_EXISTS.
    pub async fn enrol_customer_with(&self, request_id: &str) -> Result<Customer, Status> {
        let mut customer = new_customer(Cloud::Global);
        // The same request each time, so a replay is possible: the tenant and domain follow the id.
        let id = uuid::Uuid::parse_str(request_id).expect("a UUID request_id");
        customer.tenant_id = id.to_string();
        customer.primary_domain = format!("c{}.example.com", id.simple());
        customer.display_name = format!("Customer {}", &id.simple().to_string()[..8]);
        self.partners()
            .create_customer(pc_api::partner::v1::CreateCustomerRequest {
                customer: Some(customer),
                request_id: request_id.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Makes every stored idempotency key `age` old, as if its request were that long ago.
    pub async fn age_idempotency_keys(&self, age: chrono::Duration) {
        use pc_store::idempotency::{Column, Entity};
        use sea_orm::{EntityTrait, sea_query::Expr};
        let past = pc_store::db::now() - age;
        Entity::update_many().col_expr(Column::CreateTime, Expr::value(past)).exec(self.db.primary()).await.unwrap();
    }
}

/// RequestAdminRelationship as `partner` would send it: `roles` of `customer` for 90 days, under
/// a display name no other test uses.
pub fn admin_request(
    partner: &Partner,
    customer: &Customer,
    roles: &[admin_relationship::Role],
) -> RequestAdminRelationshipRequest {
    RequestAdminRelationshipRequest {
        admin_relationship: Some(AdminRelationship {
            partner: partner.name.clone(),
            customer: customer.name.clone(),
            display_name: format!("Admin {}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            roles: roles.iter().map(|role| *role as i32).collect(),
            duration: Some(prost_types::Duration { seconds: 90 * 86_400, nanos: 0 }),
            auto_extend: false,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// CreateTransfer as `target` would send it (see [`TestApp::ask_transfer`]).
pub fn transfer_request(
    target: &Partner,
    source: &Partner,
    customer: &Customer,
    subscriptions: &[&Subscription],
    provider: Option<&Partner>,
) -> CreateTransferRequest {
    CreateTransferRequest {
        transfer: Some(Transfer {
            customer: customer.name.clone(),
            source_partner: source.name.clone(),
            target_partner: target.name.clone(),
            indirect_provider: provider.map(|p| p.name.clone()).unwrap_or_default(),
            subscriptions: subscriptions.iter().map(|s| s.name.clone()).collect(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// A valid partner that no other test uses.
pub fn new_partner(role: ProgramRole, cloud: Cloud) -> Partner {
    Partner {
        display_name: format!("Partner {}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        tenant_id: uuid::Uuid::new_v4().to_string(),
        country_code: "US".into(),
        cloud: cloud as i32,
        program_role: role as i32,
        ..Default::default()
    }
}

/// A valid customer that no other test uses.
pub fn new_customer(cloud: Cloud) -> Customer {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Customer {
        display_name: format!("Customer {}", &tag[..8]),
        tenant_id: uuid::Uuid::new_v4().to_string(),
        primary_domain: format!("c{}.example.com", &tag[..12]),
        country_code: "DE".into(),
        cloud: cloud as i32,
        ..Default::default()
    }
}
