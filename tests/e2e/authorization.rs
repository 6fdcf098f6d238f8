//! The authorization matrix: every method of every service, called by every kind of caller, and
//! the exact set that gets past authorization. "Allowed" means anything but PERMISSION_DENIED and
//! UNAUTHENTICATED: an allowed caller may still meet a broken rule. A method that the protos
//! define but this table does not list fails the test, so new methods cannot skip a row.

use std::collections::BTreeSet;

use pc_api::event::v1::{ListEventsRequest, WatchEventsRequest};
use pc_api::{channel::v1::*, partner::v1::*, relationship::v1::*, types::v1::Cloud};
use pc_tests::identity::{IdentityProvider, SigningKey};
use pc_tests::{AppOptions, Reply, TestApp, new_customer, new_partner, spawn_app, spawn_app_with};
use prost::Message;
use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    Stranger,
    OtherCustomer,
    Customer,
    Supporter,
    Direct,
    Reseller,
    Provider,
    /// Partners related to the customer, each holding one ACTIVE admin relationship with it
    /// (rule 13), of one role.
    Helpdesk,
    BillingReader,
    LicenseAdmin,
    SupportEngineer,
    GlobalAdmin,
    Operator,
}

use Who::*;

const ADMINS: &[Who] = &[Helpdesk, BillingReader, LicenseAdmin, SupportEngineer, GlobalAdmin];
const EVERYONE: &[Who] = &[
    Stranger,
    OtherCustomer,
    Customer,
    Supporter,
    Direct,
    Reseller,
    Provider,
    Helpdesk,
    BillingReader,
    LicenseAdmin,
    SupportEngineer,
    GlobalAdmin,
    Operator,
];
const PARTNERS_AND_OPERATOR: &[Who] = &[
    Stranger,
    Supporter,
    Direct,
    Reseller,
    Provider,
    Helpdesk,
    BillingReader,
    LicenseAdmin,
    SupportEngineer,
    GlobalAdmin,
    Operator,
];

/// Who may call each method, by fully-qualified name.
const MATRIX: &[(&str, &[Who])] = &[
    ("partnercenter.partner.v1.PartnerService/CreatePartner", &[Operator]),
    ("partnercenter.partner.v1.PartnerService/GetPartner", EVERYONE),
    ("partnercenter.partner.v1.PartnerService/ListPartners", EVERYONE),
    ("partnercenter.partner.v1.PartnerService/UpdatePartner", &[Operator]),
    ("partnercenter.partner.v1.PartnerService/SuspendPartner", &[Operator]),
    ("partnercenter.partner.v1.PartnerService/ReactivatePartner", &[Operator]),
    ("partnercenter.partner.v1.PartnerService/CreateCustomer", PARTNERS_AND_OPERATOR),
    (
        "partnercenter.partner.v1.PartnerService/GetCustomer",
        &[
            Customer,
            Supporter,
            Direct,
            Reseller,
            Provider,
            Helpdesk,
            BillingReader,
            LicenseAdmin,
            SupportEngineer,
            GlobalAdmin,
            Operator,
        ],
    ),
    ("partnercenter.partner.v1.PartnerService/ListCustomers", EVERYONE),
    ("partnercenter.relationship.v1.RelationshipService/InviteReseller", &[Provider, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/AcceptResellerLink", &[Reseller, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/DeclineResellerLink", &[Reseller, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/EndResellerLink", &[Reseller, Provider, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/GetResellerLink", &[Reseller, Provider, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/ListResellerLinks", PARTNERS_AND_OPERATOR),
    ("partnercenter.relationship.v1.RelationshipService/RequestCustomerRelationship", &[Direct, Operator]),
    (
        "partnercenter.relationship.v1.RelationshipService/AcceptCustomerRelationship",
        &[Customer, GlobalAdmin, Operator],
    ),
    (
        "partnercenter.relationship.v1.RelationshipService/DeclineCustomerRelationship",
        &[Customer, GlobalAdmin, Operator],
    ),
    ("partnercenter.relationship.v1.RelationshipService/EndCustomerRelationship", &[Customer, Direct, Operator]),
    (
        "partnercenter.relationship.v1.RelationshipService/GetCustomerRelationship",
        &[Customer, Reseller, Provider, Helpdesk, GlobalAdmin, Operator],
    ),
    ("partnercenter.relationship.v1.RelationshipService/ListCustomerRelationships", EVERYONE),
    ("partnercenter.relationship.v1.RelationshipService/RequestAdminRelationship", &[Direct, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/ApproveAdminRelationship", &[Customer, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/DeclineAdminRelationship", &[Customer, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/TerminateAdminRelationship", &[Customer, Direct, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/GetAdminRelationship", &[Customer, Direct, Operator]),
    ("partnercenter.relationship.v1.RelationshipService/ListAdminRelationships", EVERYONE),
    ("partnercenter.relationship.v1.RelationshipService/CheckAccess", EVERYONE),
    ("partnercenter.channel.v1.ChannelService/CreateSubscription", &[Direct, Operator]),
    ("partnercenter.channel.v1.ChannelService/RegisterExternalSubscription", &[Operator]),
    (
        "partnercenter.channel.v1.ChannelService/GetSubscription",
        &[Customer, Reseller, Provider, BillingReader, LicenseAdmin, SupportEngineer, GlobalAdmin, Operator],
    ),
    ("partnercenter.channel.v1.ChannelService/ListSubscriptions", EVERYONE),
    ("partnercenter.channel.v1.ChannelService/UpdateSubscription", &[Reseller, Provider, Operator]),
    ("partnercenter.channel.v1.ChannelService/CancelSubscription", &[Reseller, Provider, Operator]),
    ("partnercenter.channel.v1.ChannelService/RequestSupport", &[Supporter, Operator]),
    ("partnercenter.channel.v1.ChannelService/AcceptSupportAssignment", &[Customer, GlobalAdmin, Operator]),
    ("partnercenter.channel.v1.ChannelService/DeclineSupportAssignment", &[Customer, GlobalAdmin, Operator]),
    ("partnercenter.channel.v1.ChannelService/EndSupportAssignment", &[Customer, Supporter, Operator]),
    (
        "partnercenter.channel.v1.ChannelService/GetSupportAssignment",
        &[Customer, Supporter, Helpdesk, SupportEngineer, GlobalAdmin, Operator],
    ),
    ("partnercenter.channel.v1.ChannelService/ListSupportAssignments", EVERYONE),
    ("partnercenter.channel.v1.ChannelService/CreateTransfer", &[Direct, Operator]),
    ("partnercenter.channel.v1.ChannelService/AcceptTransfer", &[Reseller, Operator]),
    ("partnercenter.channel.v1.ChannelService/DeclineTransfer", &[Reseller, Operator]),
    ("partnercenter.channel.v1.ChannelService/CancelTransfer", &[Direct, Operator]),
    ("partnercenter.channel.v1.ChannelService/GetTransfer", &[Customer, Reseller, Direct, Operator]),
    ("partnercenter.channel.v1.ChannelService/ListTransfers", EVERYONE),
    ("partnercenter.event.v1.EventService/ListEvents", EVERYONE),
    ("partnercenter.event.v1.EventService/WatchEvents", EVERYONE),
];

/// Everything a method may be called on, freshly made for each method.
struct World {
    provider: Partner,
    reseller: Partner,
    direct: Partner,
    supporter: Partner,
    stranger: Partner,
    customer: pc_api::partner::v1::Customer,
    other_customer: pc_api::partner::v1::Customer,
    /// The ACTIVE link between provider and reseller.
    link: ResellerLink,
    /// The reseller's relationship with the customer, billed by the provider.
    resold: CustomerRelationship,
    /// The direct partner's relationship with the customer.
    direct_relationship: CustomerRelationship,
    /// Sold by the reseller, billed by the provider.
    subscription: Subscription,
    /// The supporter's ACTIVE support of the direct partner's subscription.
    assignment: SupportAssignment,
    /// The direct partner asks the reseller for the reseller's subscription: PENDING.
    transfer: Transfer,
    /// The direct partner asks the customer for admin roles: APPROVAL_PENDING.
    admin: AdminRelationship,
    /// The holders of one ACTIVE admin relationship each, by role (`ADMINS`' order).
    admins: Vec<Partner>,
}

impl World {
    async fn new(app: &TestApp) -> Self {
        let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
        let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        let direct = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        let customer = app.customer_by("operator", Cloud::Global).await;
        let other_customer = app.customer_by("operator", Cloud::Global).await;
        let link = app.link(&provider, &reseller).await;
        let resold = app.relate(&reseller, &customer, Some(&provider)).await;
        let direct_relationship = app.relate(&direct, &customer, None).await;
        app.relate(&supporter, &customer, None).await;
        let subscription = app.sell(&reseller, &customer, "office-365-e3", ProductFamily::Productivity).await;
        let direct_sale = app.sell(&direct, &customer, "azure-plan", ProductFamily::Azure).await;
        let requested = app
            .channel()
            .request_support(RequestSupportRequest {
                subscription: direct_sale.name.clone(),
                partner: supporter.name.clone(),
                request_id: String::new(),
            })
            .await
            .reply();
        let assignment = app
            .channel_as(Some(&customer.name))
            .accept_support_assignment(AcceptSupportAssignmentRequest { name: requested.name, etag: String::new() })
            .await
            .reply();
        let transfer = app.ask_transfer(&direct, &reseller, &customer, &[&subscription], None).await;
        let admin = app.ask_admin(&direct, &customer, &[admin_relationship::Role::BillingReader]).await;
        let mut admins = Vec::new();
        for role in [
            admin_relationship::Role::HelpdeskAgent,
            admin_relationship::Role::BillingReader,
            admin_relationship::Role::LicenseAdmin,
            admin_relationship::Role::SupportEngineer,
            admin_relationship::Role::GlobalAdmin,
        ] {
            let holder = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
            app.relate(&holder, &customer, None).await;
            app.grant_admin(&holder, &customer, &[role]).await;
            admins.push(holder);
        }
        Self {
            provider,
            reseller,
            direct,
            supporter,
            stranger,
            customer,
            other_customer,
            link,
            resold,
            direct_relationship,
            subscription,
            assignment,
            transfer,
            admin,
            admins,
        }
    }

    fn subject(&self, who: Who) -> Option<String> {
        match who {
            Anonymous => None,
            Operator => Some("operator".into()),
            Provider => Some(self.provider.name.clone()),
            Reseller => Some(self.reseller.name.clone()),
            Direct => Some(self.direct.name.clone()),
            Supporter => Some(self.supporter.name.clone()),
            Stranger => Some(self.stranger.name.clone()),
            Customer => Some(self.customer.name.clone()),
            OtherCustomer => Some(self.other_customer.name.clone()),
            admin => ADMINS.iter().position(|a| *a == admin).map(|i| self.admins[i].name.clone()),
        }
    }
}

macro_rules! code_of {
    ($call:expr) => {
        $call.await.err().map_or(Code::Ok, |status| status.code())
    };
}

/// Calls `method` on `world` as `who` and returns the status code.
async fn call(app: &TestApp, world: &World, method: &str, who: Who) -> Code {
    let subject = world.subject(who);
    let mut partners = app.partners_as(subject.as_deref());
    let mut relationships = app.relationships_as(subject.as_deref());
    let mut channel = app.channel_as(subject.as_deref());
    let w = world;
    let name = |n: &str| n.to_owned();
    let none = String::new;
    let short = method.rsplit('/').next().unwrap_or_default();
    match short {
        "CreatePartner" => code_of!(partners.create_partner(CreatePartnerRequest {
            partner: Some(new_partner(ProgramRole::DirectBillPartner, Cloud::Global)),
            request_id: none(),
        })),
        "GetPartner" => code_of!(partners.get_partner(GetPartnerRequest { name: name(&w.provider.name) })),
        "ListPartners" => code_of!(partners.list_partners(ListPartnersRequest::default())),
        "UpdatePartner" => code_of!(partners.update_partner(UpdatePartnerRequest {
            partner: Some(Partner { name: name(&w.direct.name), display_name: "Renamed".into(), ..Default::default() }),
            update_mask: None,
        })),
        "SuspendPartner" => {
            code_of!(partners.suspend_partner(SuspendPartnerRequest { name: name(&w.stranger.name), etag: none() }))
        }
        "ReactivatePartner" => {
            code_of!(
                partners.reactivate_partner(ReactivatePartnerRequest { name: name(&w.stranger.name), etag: none() })
            )
        }
        "CreateCustomer" => code_of!(partners.create_customer(CreateCustomerRequest {
            customer: Some(new_customer(Cloud::Global)),
            request_id: none(),
        })),
        "GetCustomer" => code_of!(partners.get_customer(GetCustomerRequest { name: name(&w.customer.name) })),
        "ListCustomers" => code_of!(partners.list_customers(ListCustomersRequest::default())),
        "InviteReseller" => code_of!(relationships.invite_reseller(InviteResellerRequest {
            provider: name(&w.provider.name),
            reseller: name(&w.reseller.name),
            request_id: none(),
        })),
        "AcceptResellerLink" => code_of!(
            relationships.accept_reseller_link(AcceptResellerLinkRequest { name: name(&w.link.name), etag: none() })
        ),
        "DeclineResellerLink" => code_of!(
            relationships.decline_reseller_link(DeclineResellerLinkRequest { name: name(&w.link.name), etag: none() })
        ),
        "EndResellerLink" => {
            code_of!(relationships.end_reseller_link(EndResellerLinkRequest { name: name(&w.link.name), etag: none() }))
        }
        "GetResellerLink" => {
            code_of!(relationships.get_reseller_link(GetResellerLinkRequest { name: name(&w.link.name) }))
        }
        "ListResellerLinks" => code_of!(relationships.list_reseller_links(ListResellerLinksRequest::default())),
        "RequestCustomerRelationship" => {
            code_of!(relationships.request_customer_relationship(RequestCustomerRelationshipRequest {
                partner: name(&w.direct.name),
                customer: name(&w.other_customer.name),
                indirect_provider: none(),
                request_id: none(),
            }))
        }
        "AcceptCustomerRelationship" => {
            code_of!(relationships.accept_customer_relationship(AcceptCustomerRelationshipRequest {
                name: name(&w.direct_relationship.name),
                etag: none()
            }))
        }
        "DeclineCustomerRelationship" => {
            code_of!(relationships.decline_customer_relationship(DeclineCustomerRelationshipRequest {
                name: name(&w.direct_relationship.name),
                etag: none()
            }))
        }
        "EndCustomerRelationship" => {
            code_of!(relationships.end_customer_relationship(EndCustomerRelationshipRequest {
                name: name(&w.direct_relationship.name),
                etag: none()
            }))
        }
        "GetCustomerRelationship" => code_of!(
            relationships.get_customer_relationship(GetCustomerRelationshipRequest { name: name(&w.resold.name) })
        ),
        "ListCustomerRelationships" => {
            code_of!(relationships.list_customer_relationships(ListCustomerRelationshipsRequest::default()))
        }
        "CreateSubscription" => code_of!(channel.create_subscription(CreateSubscriptionRequest {
            subscription: Some(Subscription {
                customer: name(&w.customer.name),
                offer_id: "office-365-e1".into(),
                product_family: ProductFamily::Productivity as i32,
                quantity: 1,
                partner_of_record: name(&w.direct.name),
                ..Default::default()
            }),
            request_id: none(),
        })),
        "RegisterExternalSubscription" => {
            code_of!(channel.register_external_subscription(RegisterExternalSubscriptionRequest {
                subscription: Some(Subscription {
                    customer: name(&w.customer.name),
                    offer_id: "dynamics-365-sales".into(),
                    product_family: ProductFamily::Dynamics as i32,
                    quantity: 1,
                    sales_channel: SalesChannel::VendorDirect as i32,
                    ..Default::default()
                }),
                request_id: none(),
            }))
        }
        "GetSubscription" => {
            code_of!(channel.get_subscription(GetSubscriptionRequest { name: name(&w.subscription.name) }))
        }
        "ListSubscriptions" => code_of!(channel.list_subscriptions(ListSubscriptionsRequest::default())),
        "UpdateSubscription" => code_of!(channel.update_subscription(UpdateSubscriptionRequest {
            subscription: Some(Subscription { name: name(&w.subscription.name), quantity: 7, ..Default::default() }),
            update_mask: None,
        })),
        "CancelSubscription" => code_of!(
            channel.cancel_subscription(CancelSubscriptionRequest { name: name(&w.subscription.name), etag: none() })
        ),
        "RequestSupport" => code_of!(channel.request_support(RequestSupportRequest {
            subscription: name(&w.subscription.name),
            partner: name(&w.supporter.name),
            request_id: none(),
        })),
        "AcceptSupportAssignment" => code_of!(channel.accept_support_assignment(AcceptSupportAssignmentRequest {
            name: name(&w.assignment.name),
            etag: none()
        })),
        "DeclineSupportAssignment" => code_of!(channel.decline_support_assignment(DeclineSupportAssignmentRequest {
            name: name(&w.assignment.name),
            etag: none()
        })),
        "EndSupportAssignment" => code_of!(
            channel
                .end_support_assignment(EndSupportAssignmentRequest { name: name(&w.assignment.name), etag: none() })
        ),
        "GetSupportAssignment" => {
            code_of!(channel.get_support_assignment(GetSupportAssignmentRequest { name: name(&w.assignment.name) }))
        }
        "ListSupportAssignments" => {
            code_of!(channel.list_support_assignments(ListSupportAssignmentsRequest::default()))
        }
        "CreateTransfer" => {
            code_of!(channel.create_transfer(pc_tests::transfer_request(
                &w.direct,
                &w.reseller,
                &w.customer,
                &[],
                None
            )))
        }
        "AcceptTransfer" => {
            code_of!(channel.accept_transfer(AcceptTransferRequest { name: name(&w.transfer.name), etag: none() }))
        }
        "DeclineTransfer" => {
            code_of!(channel.decline_transfer(DeclineTransferRequest { name: name(&w.transfer.name), etag: none() }))
        }
        "CancelTransfer" => {
            code_of!(channel.cancel_transfer(CancelTransferRequest { name: name(&w.transfer.name), etag: none() }))
        }
        "GetTransfer" => code_of!(channel.get_transfer(GetTransferRequest { name: name(&w.transfer.name) })),
        "ListTransfers" => code_of!(channel.list_transfers(ListTransfersRequest::default())),
        "RequestAdminRelationship" => code_of!(relationships.request_admin_relationship(pc_tests::admin_request(
            &w.direct,
            &w.customer,
            &[admin_relationship::Role::HelpdeskAgent]
        ))),
        "ApproveAdminRelationship" => {
            code_of!(relationships.approve_admin_relationship(ApproveAdminRelationshipRequest {
                name: name(&w.admin.name),
                etag: none()
            }))
        }
        "DeclineAdminRelationship" => {
            code_of!(relationships.decline_admin_relationship(DeclineAdminRelationshipRequest {
                name: name(&w.admin.name),
                etag: none()
            }))
        }
        "TerminateAdminRelationship" => {
            code_of!(relationships.terminate_admin_relationship(TerminateAdminRelationshipRequest {
                name: name(&w.admin.name),
                etag: none()
            }))
        }
        "GetAdminRelationship" => {
            code_of!(relationships.get_admin_relationship(GetAdminRelationshipRequest { name: name(&w.admin.name) }))
        }
        "ListAdminRelationships" => {
            code_of!(relationships.list_admin_relationships(ListAdminRelationshipsRequest::default()))
        }
        "CheckAccess" => code_of!(relationships.check_access(CheckAccessRequest {
            principal: none(),
            permission: "subscriptions.get".into(),
            resource: name(&w.subscription.name),
        })),
        "ListEvents" => code_of!(app.events_as(subject.as_deref()).list_events(ListEventsRequest::default())),
        // A watch that was let in has started: its first message is whatever comes next.
        "WatchEvents" => code_of!(app.events_as(subject.as_deref()).watch_events(WatchEventsRequest::default())),
        other => panic!("no call written for {other}"),
    }
}

/// Every method the partner-center protos define, as `package.Service/Method`.
fn defined_methods() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(pc_api::FILE_DESCRIPTOR_SET).expect("descriptor set");
    set.file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.iter().flat_map(move |service| {
                let prefix = format!("{package}.{}", service.name());
                service.method.iter().map(move |method| format!("{prefix}/{}", method.name()))
            })
        })
        .collect()
}

#[test]
fn every_method_has_a_row_in_the_matrix() {
    let listed: BTreeSet<String> = MATRIX.iter().map(|(method, _)| (*method).to_owned()).collect();
    assert_eq!(listed, defined_methods(), "add a row for each new method, remove rows of removed ones");
}

#[tokio::test]
async fn each_method_allows_exactly_its_callers() {
    assert_matrix(&spawn_app().await).await;
}

/// The same matrix when tokens come from an identity provider (ES256 keys from its JWKS).
#[tokio::test]
async fn each_method_allows_exactly_its_callers_with_tokens_of_an_identity_provider() {
    let provider = IdentityProvider::start(SigningKey::ec(), &[]).await;
    assert_matrix(&spawn_app_with(AppOptions { identity: Some(provider), ..Default::default() }).await).await;
}

async fn assert_matrix(app: &TestApp) {
    let everyone = std::iter::once(Anonymous).chain(EVERYONE.iter().copied());
    let mut mismatches = Vec::new();
    for (method, allowed) in MATRIX {
        let world = World::new(app).await;
        for who in everyone.clone() {
            let code = call(app, &world, method, who).await;
            let passed = !matches!(code, Code::PermissionDenied | Code::Unauthenticated);
            if who == Anonymous && code != Code::Unauthenticated {
                mismatches.push(format!("{method} without a credential: {code:?}"));
            }
            if code == Code::Internal {
                mismatches.push(format!("{method} as {who:?}: INTERNAL"));
            }
            if passed != allowed.contains(&who) {
                mismatches.push(format!(
                    "{method} as {who:?}: {code:?}, expected {}",
                    if passed { "denied" } else { "allowed" }
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "authorization matrix mismatches:\n{}", mismatches.join("\n"));
}

/// The methods that act on an existing resource: those whose request names it (`name`) and the
/// Updates (which name it inside the resource they carry), but the partner directory's (public to
/// read, an operator's to change): what CheckAccess answers for.
fn methods_on_existing_resources() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(pc_api::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let naming: BTreeSet<String> = set
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            let named = file.message_type.iter().filter(|message| message.field.iter().any(|f| f.name() == "name"));
            named.map(move |message| format!(".{package}.{}", message.name()))
        })
        .collect();
    let mut methods = BTreeSet::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                let on_existing = naming.contains(method.input_type()) || method.name().starts_with("Update");
                let directory = service.name() == "PartnerService" && !method.name().ends_with("Customer");
                if on_existing && !directory {
                    methods.insert(format!("{}.{}/{}", file.package(), service.name(), method.name()));
                }
            }
        }
    }
    methods
}

/// The permission each method on an existing resource of a customer asks for (rule 13), with the
/// resource [`call`] names; `None` for the others (creates, Lists, the feed, and resources no
/// role reaches), which `CheckAccess` does not answer for.
fn permission_of(method: &str, w: &World) -> Option<(&'static str, String)> {
    let short = method.rsplit('/').next().unwrap_or_default();
    let (permission, resource) = match short {
        "GetCustomer" => ("customers.get", &w.customer.name),
        "GetCustomerRelationship" => ("customerRelationships.get", &w.resold.name),
        "AcceptCustomerRelationship" => ("customerRelationships.accept", &w.direct_relationship.name),
        "DeclineCustomerRelationship" => ("customerRelationships.decline", &w.direct_relationship.name),
        "EndCustomerRelationship" => ("customerRelationships.end", &w.direct_relationship.name),
        "GetSubscription" => ("subscriptions.get", &w.subscription.name),
        "UpdateSubscription" => ("subscriptions.update", &w.subscription.name),
        "CancelSubscription" => ("subscriptions.cancel", &w.subscription.name),
        "GetSupportAssignment" => ("supportAssignments.get", &w.assignment.name),
        "AcceptSupportAssignment" => ("supportAssignments.accept", &w.assignment.name),
        "DeclineSupportAssignment" => ("supportAssignments.decline", &w.assignment.name),
        "EndSupportAssignment" => ("supportAssignments.end", &w.assignment.name),
        "GetResellerLink" => ("resellerLinks.get", &w.link.name),
        "AcceptResellerLink" => ("resellerLinks.accept", &w.link.name),
        "DeclineResellerLink" => ("resellerLinks.decline", &w.link.name),
        "EndResellerLink" => ("resellerLinks.end", &w.link.name),
        "GetTransfer" => ("transfers.get", &w.transfer.name),
        "AcceptTransfer" => ("transfers.accept", &w.transfer.name),
        "DeclineTransfer" => ("transfers.decline", &w.transfer.name),
        "CancelTransfer" => ("transfers.cancel", &w.transfer.name),
        "GetAdminRelationship" => ("adminRelationships.get", &w.admin.name),
        "ApproveAdminRelationship" => ("adminRelationships.approve", &w.admin.name),
        "DeclineAdminRelationship" => ("adminRelationships.decline", &w.admin.name),
        "TerminateAdminRelationship" => ("adminRelationships.terminate", &w.admin.name),
        _ => return None,
    };
    Some((permission, resource.clone()))
}

/// Rule 13: CheckAccess answers as the call does, for every method it answers for (each on an
/// existing resource, but the partner directory's) and every caller, the admin relationships'
/// holders among them: on a fresh world per method, CheckAccess is asked first for every caller
/// (by an operator, about the caller), then the calls are made, as the matrix makes them.
#[tokio::test]
async fn check_access_agrees_with_the_call_for_every_method_and_caller() {
    let app = spawn_app().await;
    let (mut disagreements, mut answered) = (Vec::new(), BTreeSet::new());
    for (method, _) in MATRIX {
        let world = World::new(&app).await;
        let Some((permission, resource)) = permission_of(method, &world) else { continue };
        answered.insert((*method).to_owned());
        let mut answers = Vec::new();
        for who in EVERYONE.iter().copied() {
            let request = CheckAccessRequest {
                principal: world.subject(who).unwrap_or_default(),
                permission: permission.into(),
                resource: resource.clone(),
            };
            let answer = app.relationships().check_access(request).await.reply();
            let why = if answer.allowed { &answer.path } else { &answer.denial };
            assert!(!why.is_empty(), "{method} as {who:?}: CheckAccess says no why: {answer:?}");
            answers.push((who, answer));
        }
        for (who, answer) in answers {
            let code = call(&app, &world, method, who).await;
            let passed = !matches!(code, Code::PermissionDenied | Code::Unauthenticated);
            if answer.allowed != passed {
                disagreements.push(format!("{method} as {who:?}: the call {code:?}, CheckAccess {answer:?}"));
            }
        }
    }
    assert_eq!(answered, methods_on_existing_resources(), "a method on an existing resource CheckAccess skips");
    assert!(disagreements.is_empty(), "CheckAccess disagrees with the call:\n{}", disagreements.join("\n"));
}
