//! `partner-center demo`: fills an empty database with the README's scenarios, so a newcomer's
//! first grpcurl call shows data, and prints one `export` line with a token per principal.
//!
//! The data goes in through the API, not SQL: a server is built in-process on a free local port
//! (the same startup path as `serve`) and every rule checks what the demo does. The scenarios:
//! two-tier (Fabrikam, an indirect provider, and Northwind, its reseller), multi-partner (Contoso
//! buys from Northwind through Fabrikam and from Adatum directly), multi-channel (Litware supports
//! a subscription Contoso bought from the vendor), transfers (Adatum hands Litware a subscription;
//! Adatum asks Northwind for another, still PENDING), delegated administration (Contoso grants
//! Litware support roles for 180 days; Adatum's request for billing reads waits for approval) and a
//! national cloud (Tailspin and its partner in the Germany cloud).

use std::{net::SocketAddr, time::Duration};

use pc_api::channel::v1::{
    AcceptSupportAssignmentRequest, AcceptTransferRequest, CreateSubscriptionRequest, CreateTransferRequest,
    ProductFamily, RegisterExternalSubscriptionRequest, RequestSupportRequest, SalesChannel, Subscription, Transfer,
    channel_service_client::ChannelServiceClient,
};
use pc_api::partner::v1::{
    CreateCustomerRequest, CreatePartnerRequest, Customer, ListPartnersRequest, Partner, ProgramRole,
    partner_service_client::PartnerServiceClient,
};
use pc_api::relationship::v1::{
    AcceptCustomerRelationshipRequest, AcceptResellerLinkRequest, AdminRelationship, ApproveAdminRelationshipRequest,
    InviteResellerRequest, RequestAdminRelationshipRequest, RequestCustomerRelationshipRequest, admin_relationship,
    relationship_service_client::RelationshipServiceClient,
};
use pc_api::types::v1::Cloud;
use pc_server::{ServerConfig, TokenIssuer};
use tonic::{Request, Status, metadata::MetadataValue, service::interceptor::InterceptedService, transport::Channel};

/// How long the printed tokens stay valid.
const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

type Bearer = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;

/// The three clients, as one principal.
struct As {
    partners: PartnerServiceClient<InterceptedService<Channel, Bearer>>,
    relationships: RelationshipServiceClient<InterceptedService<Channel, Bearer>>,
    channel: ChannelServiceClient<InterceptedService<Channel, Bearer>>,
}

struct Demo {
    channel: Channel,
    tokens: TokenIssuer,
}

impl Demo {
    fn token(&self, subject: &str) -> Result<String, String> {
        self.tokens.mint(subject, TOKEN_TTL).map_err(|e| e.to_string())
    }

    fn as_(&self, subject: &str) -> Result<As, String> {
        let header: MetadataValue<_> =
            format!("Bearer {}", self.token(subject)?).parse().map_err(|_| "a token is not ASCII".to_owned())?;
        let bearer = move || -> Bearer {
            let header = header.clone();
            Box::new(move |mut request: Request<()>| {
                request.metadata_mut().insert("authorization", header.clone());
                Ok(request)
            })
        };
        Ok(As {
            partners: PartnerServiceClient::with_interceptor(self.channel.clone(), bearer()),
            relationships: RelationshipServiceClient::with_interceptor(self.channel.clone(), bearer()),
            channel: ChannelServiceClient::with_interceptor(self.channel.clone(), bearer()),
        })
    }
}

fn failed(what: &str) -> impl Fn(Status) -> String + '_ {
    move |status| format!("{what}: {} {}", status.code(), status.message())
}

/// Fills the empty database at `url` and prints the `export` lines.
pub async fn run(config: &ServerConfig, url: &str, secret: &str, secret_generated: bool) -> Result<(), String> {
    let mut local = config.clone();
    local.listen_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let app =
        pc_server::App::build(&local, url, secret, SocketAddr::from(([127, 0, 0, 1], 0)), &crate::SERVICES).await?;
    pc_store::db::migrate(app.database()).await.map_err(|e| format!("migrating {url}: {e}"))?;
    let addr = app.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("cannot reach the in-process server: {e}"))?;
    let demo = Demo { channel, tokens: TokenIssuer::new(secret) };
    let filled = fill(&demo).await;
    let _ = stop.send(());
    let _ = server.await;
    let principals = filled?;

    if secret_generated {
        println!("# AUTH_JWT_SECRET was not set: generated one. Serve with it, or the tokens below are refused.");
    }
    println!("# Demo data is in {url}. Start `partner-center serve` with this secret, then call it, e.g.:");
    println!(
        "#   grpcurl -plaintext -H \"authorization: Bearer $NORTHWIND_TOKEN\" -d '{{}}' 127.0.0.1:50050 partnercenter.channel.v1.ChannelService/ListSubscriptions"
    );
    if secret_generated {
        println!("export AUTH_JWT_SECRET='{secret}'");
    }
    let exports: Result<Vec<String>, String> =
        principals.iter().map(|(variable, subject)| Ok(format!("{variable}_TOKEN={}", demo.token(subject)?))).collect();
    println!("export {}", exports?.join(" "));
    Ok(())
}

/// The scenarios, through the API. Returns each principal's variable name and subject.
async fn fill(demo: &Demo) -> Result<Vec<(&'static str, String)>, String> {
    let mut operator = demo.as_("operator")?;
    let existing = operator
        .partners
        .list_partners(ListPartnersRequest { page_size: 1, ..Default::default() })
        .await
        .map_err(failed("ListPartners"))?;
    if !existing.into_inner().partners.is_empty() {
        return Err("the demo fills an empty database, and this one already has partners".into());
    }

    let enrol = async |operator: &mut As, name: &str, role: ProgramRole, cloud: Cloud, country: &str| {
        let partner = Partner {
            display_name: name.to_owned(),
            tenant_id: uuid::Uuid::new_v4().to_string(),
            country_code: country.to_owned(),
            cloud: cloud as i32,
            program_role: role as i32,
            ..Default::default()
        };
        let request = CreatePartnerRequest { partner: Some(partner), ..Default::default() };
        operator.partners.create_partner(request).await.map(|r| r.into_inner().name).map_err(failed("CreatePartner"))
    };
    let fabrikam =
        enrol(&mut operator, "Fabrikam Distribution", ProgramRole::IndirectProvider, Cloud::Global, "US").await?;
    let northwind =
        enrol(&mut operator, "Northwind Resellers", ProgramRole::IndirectReseller, Cloud::Global, "US").await?;
    let adatum = enrol(&mut operator, "Adatum Direct", ProgramRole::DirectBillPartner, Cloud::Global, "GB").await?;
    let litware = enrol(&mut operator, "Litware Support", ProgramRole::DirectBillPartner, Cloud::Global, "US").await?;
    let wingtip =
        enrol(&mut operator, "Wingtip Partner GmbH", ProgramRole::DirectBillPartner, Cloud::Germany, "DE").await?;

    let customer = async |operator: &mut As, name: &str, domain: &str, cloud: Cloud, country: &str| {
        let customer = Customer {
            display_name: name.to_owned(),
            tenant_id: uuid::Uuid::new_v4().to_string(),
            primary_domain: domain.to_owned(),
            country_code: country.to_owned(),
            cloud: cloud as i32,
            ..Default::default()
        };
        let request = CreateCustomerRequest { customer: Some(customer), ..Default::default() };
        operator.partners.create_customer(request).await.map(|r| r.into_inner().name).map_err(failed("CreateCustomer"))
    };
    let contoso = customer(&mut operator, "Contoso Ltd", "contoso.example.com", Cloud::Global, "US").await?;
    let tailspin = customer(&mut operator, "Tailspin Toys GmbH", "tailspin.example.de", Cloud::Germany, "DE").await?;

    // Two-tier: the provider invites, the reseller accepts.
    let link = demo
        .as_(&fabrikam)?
        .relationships
        .invite_reseller(InviteResellerRequest {
            provider: fabrikam.clone(),
            reseller: northwind.clone(),
            ..Default::default()
        })
        .await
        .map_err(failed("InviteReseller"))?
        .into_inner();
    demo.as_(&northwind)?
        .relationships
        .accept_reseller_link(AcceptResellerLinkRequest { name: link.name, etag: String::new() })
        .await
        .map_err(failed("AcceptResellerLink"))?;

    // Multi-partner (and the national cloud): each partner asks, the customer accepts.
    let relate = async |partner: &str, customer: &str, provider: &str| -> Result<(), String> {
        let request = RequestCustomerRelationshipRequest {
            partner: partner.to_owned(),
            customer: customer.to_owned(),
            indirect_provider: provider.to_owned(),
            ..Default::default()
        };
        let asked = demo
            .as_(partner)?
            .relationships
            .request_customer_relationship(request)
            .await
            .map_err(failed("RequestCustomerRelationship"))?
            .into_inner();
        let accept = AcceptCustomerRelationshipRequest { name: asked.name, etag: String::new() };
        demo.as_(customer)?
            .relationships
            .accept_customer_relationship(accept)
            .await
            .map_err(failed("AcceptCustomerRelationship"))?;
        Ok(())
    };
    relate(&northwind, &contoso, &fabrikam).await?;
    relate(&adatum, &contoso, "").await?;
    relate(&litware, &contoso, "").await?;
    relate(&wingtip, &tailspin, "").await?;

    let sell = async |partner: &str, customer: &str, offer: &str, family: ProductFamily, quantity: i32| {
        let subscription = Subscription {
            customer: customer.to_owned(),
            offer_id: offer.to_owned(),
            product_family: family as i32,
            quantity,
            partner_of_record: partner.to_owned(),
            ..Default::default()
        };
        let request = CreateSubscriptionRequest { subscription: Some(subscription), ..Default::default() };
        let sold =
            demo.as_(partner)?.channel.create_subscription(request).await.map_err(failed("CreateSubscription"))?;
        Ok::<_, String>(sold.into_inner().name)
    };
    let suite = sell(&northwind, &contoso, "office-365-e3", ProductFamily::Productivity, 25).await?;
    sell(&adatum, &contoso, "azure-plan", ProductFamily::Azure, 1).await?;
    let desktops = sell(&adatum, &contoso, "windows-365-business", ProductFamily::Other, 15).await?;
    sell(&wingtip, &tailspin, "office-365-e3", ProductFamily::Productivity, 10).await?;

    // Transfers: the target asks the source for subscriptions of a customer both work with.
    let transfer = async |target: &str, source: &str, subscription: &str| {
        let transfer = Transfer {
            customer: contoso.clone(),
            source_partner: source.to_owned(),
            target_partner: target.to_owned(),
            subscriptions: vec![subscription.to_owned()],
            ..Default::default()
        };
        let request = CreateTransferRequest { transfer: Some(transfer), ..Default::default() };
        let asked = demo.as_(target)?.channel.create_transfer(request).await.map_err(failed("CreateTransfer"))?;
        Ok::<_, String>(asked.into_inner().name)
    };
    let handed_over = transfer(&litware, &adatum, &desktops).await?;
    demo.as_(&adatum)?
        .channel
        .accept_transfer(AcceptTransferRequest { name: handed_over, etag: String::new() })
        .await
        .map_err(failed("AcceptTransfer"))?;
    transfer(&adatum, &northwind, &suite).await?;

    // Multi-channel: bought from the vendor, supported by Litware once Contoso accepts.
    let external = Subscription {
        customer: contoso.clone(),
        offer_id: "dynamics-365-sales".to_owned(),
        product_family: ProductFamily::Dynamics as i32,
        quantity: 40,
        sales_channel: SalesChannel::VendorDirect as i32,
        ..Default::default()
    };
    let external = operator
        .channel
        .register_external_subscription(RegisterExternalSubscriptionRequest {
            subscription: Some(external),
            ..Default::default()
        })
        .await
        .map_err(failed("RegisterExternalSubscription"))?
        .into_inner();
    let support = demo
        .as_(&litware)?
        .channel
        .request_support(RequestSupportRequest {
            subscription: external.name,
            partner: litware.clone(),
            ..Default::default()
        })
        .await
        .map_err(failed("RequestSupport"))?
        .into_inner();
    demo.as_(&contoso)?
        .channel
        .accept_support_assignment(AcceptSupportAssignmentRequest { name: support.name, etag: String::new() })
        .await
        .map_err(failed("AcceptSupportAssignment"))?;

    // Delegated administration: a partner asks the customer for admin roles for a time.
    let ask_admin = async |partner: &str, display_name: &str, roles: &[admin_relationship::Role]| {
        let asked = AdminRelationship {
            partner: partner.to_owned(),
            customer: contoso.clone(),
            display_name: display_name.to_owned(),
            roles: roles.iter().map(|role| *role as i32).collect(),
            duration: Some(prost_types::Duration { seconds: 180 * 86_400, nanos: 0 }),
            ..Default::default()
        };
        let request = RequestAdminRelationshipRequest { admin_relationship: Some(asked), ..Default::default() };
        let asked = demo
            .as_(partner)?
            .relationships
            .request_admin_relationship(request)
            .await
            .map_err(failed("RequestAdminRelationship"))?;
        Ok::<_, String>(asked.into_inner().name)
    };
    use admin_relationship::Role;
    let support_roles =
        ask_admin(&litware, "Litware support desk", &[Role::SupportEngineer, Role::HelpdeskAgent]).await?;
    demo.as_(&contoso)?
        .relationships
        .approve_admin_relationship(ApproveAdminRelationshipRequest { name: support_roles, etag: String::new() })
        .await
        .map_err(failed("ApproveAdminRelationship"))?;
    ask_admin(&adatum, "Adatum billing", &[Role::BillingReader]).await?;

    Ok(vec![
        ("OPERATOR", "operator".to_owned()),
        ("FABRIKAM", fabrikam),
        ("NORTHWIND", northwind),
        ("ADATUM", adatum),
        ("LITWARE", litware),
        ("WINGTIP", wingtip),
        ("CONTOSO", contoso),
        ("TAILSPIN", tailspin),
    ])
}
