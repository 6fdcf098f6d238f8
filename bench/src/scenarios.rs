//! The measured scenarios, their seed data, and one operation of each. Seeding goes through the
//! API like any client, except the bulk of large subscription tables, which PostgreSQL generates
//! in one statement (a million API calls would measure the seeding, not the service).

use std::time::Duration;

use clap::ValueEnum;
use pc_api::{
    channel::v1::{
        AcceptTransferRequest, CreateSubscriptionRequest, CreateTransferRequest, ListSubscriptionsRequest,
        ProductFamily, Subscription, Transfer, channel_service_client::ChannelServiceClient,
    },
    partner::v1::{
        CreateCustomerRequest, CreatePartnerRequest, Customer, GetPartnerRequest, Partner, ProgramRole,
        partner_service_client::PartnerServiceClient,
    },
    relationship::v1::{
        AcceptCustomerRelationshipRequest, AcceptResellerLinkRequest, InviteResellerRequest,
        RequestCustomerRelationshipRequest, relationship_service_client::RelationshipServiceClient,
    },
    types::v1::Cloud,
};
use pc_server::TokenIssuer;
use sea_orm::ConnectionTrait;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// grpc.health.v1.Health/Check: the framework's own limit.
    Health,
    /// GetPartner of a seeded partner.
    GetPartner,
    /// CreatePartner of a new partner (insert plus audit event).
    CreatePartner,
    /// A partner's first page of 50 subscriptions, under the visibility rule.
    ListSubscriptions,
    /// Enrol a reseller and a customer, then invite, accept, request, accept, sell.
    TwoTierFlow,
    /// A 10-subscription transfer between two partners of one customer: the target asks, the
    /// source accepts (two calls, one operation). Each worker moves its own ten back and forth.
    Transfer,
}

/// How many subscriptions one transfer of [`Scenario::Transfer`] moves.
pub const TRANSFER_SIZE: usize = 10;

/// Two partners of one customer and, per worker, the ten subscriptions it moves between them
/// (sold by the first; an even operation moves them to the second, an odd one back).
struct Transfers {
    customer: String,
    partners: [String; 2],
    batches: Vec<Vec<String>>,
}

/// Adds a bearer token to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Auth = InterceptedService<Channel, Bearer>;

/// Mints tokens like any client of the service would be given them.
pub struct Tokens(TokenIssuer);

impl Tokens {
    pub fn new(secret: &str) -> Self {
        Self(TokenIssuer::new(secret))
    }

    pub fn bearer(&self, subject: &str) -> Result<Bearer, String> {
        let token = self.0.mint(subject, Duration::from_secs(3600)).map_err(|e| e.to_string())?;
        format!("Bearer {token}").parse().map(Bearer).map_err(|_| "token is not ASCII".to_owned())
    }
}

/// What the seed step made, for the operations to use.
pub struct Fixture {
    operator: Bearer,
    partners: Vec<String>,
    provider: Option<Partner>,
    lister: Option<Bearer>,
    transfers: Option<Transfers>,
    tokens_secret: String,
}

fn partner(role: ProgramRole) -> Partner {
    Partner {
        display_name: "Bench Partner".into(),
        tenant_id: uuid::Uuid::new_v4().to_string(),
        country_code: "US".into(),
        cloud: Cloud::Global as i32,
        program_role: role as i32,
        ..Default::default()
    }
}

fn customer() -> Customer {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Customer {
        display_name: "Bench Customer".into(),
        tenant_id: uuid::Uuid::new_v4().to_string(),
        primary_domain: format!("b{}.example.com", &tag[..16]),
        country_code: "DE".into(),
        cloud: Cloud::Global as i32,
        ..Default::default()
    }
}

pub fn status_text(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

pub async fn enrol(channel: &Channel, operator: &Bearer, role: ProgramRole) -> Result<Partner, String> {
    let mut client = PartnerServiceClient::with_interceptor(channel.clone(), operator.clone());
    let request = CreatePartnerRequest { partner: Some(partner(role)), request_id: String::new() };
    client.create_partner(request).await.map(|r| r.into_inner()).map_err(|s| status_text(&s))
}

/// Runs the two-tier flow for a fresh reseller and customer; `sell` says whether to end with a sale.
async fn two_tier(channel: &Channel, tokens: &Tokens, operator: &Bearer, provider: &Partner) -> Result<(), String> {
    let reseller = enrol(channel, operator, ProgramRole::IndirectReseller).await?;
    let as_provider = tokens.bearer(&provider.name)?;
    let as_reseller = tokens.bearer(&reseller.name)?;
    let status = |s: Status| status_text(&s);
    let mut relationships = RelationshipServiceClient::with_interceptor(channel.clone(), as_provider);
    let link = relationships
        .invite_reseller(InviteResellerRequest {
            provider: provider.name.clone(),
            reseller: reseller.name.clone(),
            request_id: String::new(),
        })
        .await
        .map_err(status)?
        .into_inner();
    let mut relationships = RelationshipServiceClient::with_interceptor(channel.clone(), as_reseller.clone());
    relationships
        .accept_reseller_link(AcceptResellerLinkRequest { name: link.name, etag: String::new() })
        .await
        .map_err(status)?;
    let mut partners = PartnerServiceClient::with_interceptor(channel.clone(), as_reseller.clone());
    let customer = partners
        .create_customer(CreateCustomerRequest { customer: Some(customer()), request_id: String::new() })
        .await
        .map_err(status)?
        .into_inner();
    let relationship = relationships
        .request_customer_relationship(RequestCustomerRelationshipRequest {
            partner: reseller.name.clone(),
            customer: customer.name.clone(),
            indirect_provider: provider.name.clone(),
            request_id: String::new(),
        })
        .await
        .map_err(status)?
        .into_inner();
    let mut as_customer = RelationshipServiceClient::with_interceptor(channel.clone(), tokens.bearer(&customer.name)?);
    as_customer
        .accept_customer_relationship(AcceptCustomerRelationshipRequest {
            name: relationship.name,
            etag: String::new(),
        })
        .await
        .map_err(status)?;
    let mut channel_client = ChannelServiceClient::with_interceptor(channel.clone(), as_reseller);
    channel_client
        .create_subscription(CreateSubscriptionRequest {
            subscription: Some(Subscription {
                customer: customer.name,
                offer_id: "office-365-e3".into(),
                product_family: ProductFamily::Productivity as i32,
                quantity: 5,
                partner_of_record: reseller.name,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map_err(status)?;
    Ok(())
}

/// How many of the seeded subscriptions the listing partner holds (at most half of them): a
/// partner's book stays the same size while the table grows with everyone else's, so a query
/// that scans instead of seeking shows up as a 1 M page slower than a 10 k one.
const LISTER_BOOK: u64 = 1_000;

/// The seller of subscription `index` of `rows`: the listing partner (seller 0) holds the first
/// [`LISTER_BOOK`], the other sellers the rest, round-robin.
fn seller_of(index: u64, rows: u64, sellers: u64) -> u64 {
    if index < LISTER_BOOK.min(rows / 2) { 0 } else { 1 + index % (sellers - 1) }
}

/// A customer (created by the operator) and `count` direct-bill partners, each with an ACTIVE
/// relationship with it.
async fn customer_with_sellers(
    channel: &Channel,
    operator: &Bearer,
    count: usize,
) -> Result<(Customer, Vec<String>), String> {
    let mut partners = PartnerServiceClient::with_interceptor(channel.clone(), operator.clone());
    let buyer = partners
        .create_customer(CreateCustomerRequest { customer: Some(customer()), request_id: String::new() })
        .await
        .map_err(|s| status_text(&s))?
        .into_inner();
    let mut sellers = Vec::new();
    for _ in 0..count {
        let seller = enrol(channel, operator, ProgramRole::DirectBillPartner).await?;
        let mut relationships = RelationshipServiceClient::with_interceptor(channel.clone(), operator.clone());
        let asked = relationships
            .request_customer_relationship(RequestCustomerRelationshipRequest {
                partner: seller.name.clone(),
                customer: buyer.name.clone(),
                indirect_provider: String::new(),
                request_id: String::new(),
            })
            .await
            .map_err(|s| status_text(&s))?
            .into_inner();
        relationships
            .accept_customer_relationship(AcceptCustomerRelationshipRequest { name: asked.name, etag: String::new() })
            .await
            .map_err(|s| status_text(&s))?;
        sellers.push(seller.name);
    }
    Ok((buyer, sellers))
}

/// `seller` sells `customer` one subscription of `offer`; its name.
async fn sell(
    channel: &Channel,
    tokens: &Tokens,
    seller: &str,
    customer: &str,
    offer: String,
) -> Result<String, String> {
    let mut client = ChannelServiceClient::with_interceptor(channel.clone(), tokens.bearer(seller)?);
    let subscription = Subscription {
        customer: customer.to_owned(),
        offer_id: offer,
        product_family: ProductFamily::Azure as i32,
        quantity: 1,
        partner_of_record: seller.to_owned(),
        ..Default::default()
    };
    let request = CreateSubscriptionRequest { subscription: Some(subscription), request_id: String::new() };
    Ok(client.create_subscription(request).await.map_err(|s| status_text(&s))?.into_inner().name)
}

/// Seeds what `scenario` needs. For ListSubscriptions, `rows` subscriptions spread over ten
/// direct-bill partners of one customer; the first partner is the one that lists. For Transfer,
/// ten subscriptions for each of `workers`.
pub async fn seed(
    scenario: Scenario,
    channel: &Channel,
    tokens: &Tokens,
    secret: &str,
    rows: u64,
    workers: usize,
    database_url: Option<&str>,
) -> Result<Fixture, String> {
    let operator = tokens.bearer("operator")?;
    let mut fixture = Fixture {
        operator: operator.clone(),
        partners: Vec::new(),
        provider: None,
        lister: None,
        transfers: None,
        tokens_secret: secret.to_owned(),
    };
    match scenario {
        Scenario::Health | Scenario::CreatePartner => {}
        Scenario::GetPartner => {
            for _ in 0..100 {
                fixture.partners.push(enrol(channel, &operator, ProgramRole::DirectBillPartner).await?.name);
            }
        }
        Scenario::TwoTierFlow => {
            fixture.provider = Some(enrol(channel, &operator, ProgramRole::IndirectProvider).await?)
        }
        Scenario::Transfer => {
            let (buyer, sellers) = customer_with_sellers(channel, &operator, 2).await?;
            let mut batches = Vec::with_capacity(workers);
            for worker in 0..workers.max(1) {
                let mut batch = Vec::with_capacity(TRANSFER_SIZE);
                for index in 0..TRANSFER_SIZE {
                    batch.push(
                        sell(channel, tokens, &sellers[0], &buyer.name, format!("offer-{worker}-{index}")).await?,
                    );
                }
                batches.push(batch);
            }
            let partners = [sellers[0].clone(), sellers[1].clone()];
            fixture.transfers = Some(Transfers { customer: buyer.name, partners, batches });
        }
        Scenario::ListSubscriptions => {
            let (buyer, sellers) = customer_with_sellers(channel, &operator, 10).await?;
            match database_url {
                Some(url) if url.starts_with("postgres") => {
                    bulk_subscriptions(url, &buyer.name, &sellers, rows).await?
                }
                _ => {
                    for index in 0..rows {
                        let seller = &sellers[usize::try_from(seller_of(index, rows, 10)).unwrap_or(0)];
                        sell(channel, tokens, seller, &buyer.name, format!("offer-{index}")).await?;
                    }
                }
            }
            fixture.lister = Some(tokens.bearer(&sellers[0])?);
        }
    }
    Ok(fixture)
}

/// Inserts `rows` subscriptions of `customer`, sold as [`seller_of`] says, in one statement.
async fn bulk_subscriptions(url: &str, customer: &str, sellers: &[String], rows: u64) -> Result<(), String> {
    let id = |name: &str| name.rsplit('/').next().unwrap_or_default().to_owned();
    let sellers: Vec<String> = sellers.iter().map(|s| format!("'{}'::uuid", id(s))).collect();
    let db = sea_orm::Database::connect(url).await.map_err(|e| e.to_string())?;
    let sql = format!(
        "INSERT INTO subscriptions (id, customer_id, offer_id, product_family, quantity, sales_channel, \
         partner_of_record_id, billing_partner_id, state, revision, create_time, update_time) \
         SELECT gen_random_uuid(), '{customer}'::uuid, 'offer-' || i, 'AZURE', 1, 'PROGRAM_DIRECT_BILL', \
         seller, seller, 'ACTIVE', 1, now(), now() \
         FROM (SELECT i, (ARRAY[{sellers}])[1 + CASE WHEN i < {book} THEN 0 ELSE 1 + i % {others} END] AS seller \
               FROM generate_series(0, {rows} - 1) AS i) AS numbered",
        customer = id(customer),
        sellers = sellers.join(","),
        book = LISTER_BOOK.min(rows / 2),
        others = sellers.len() - 1,
    );
    db.execute_unprepared(&sql).await.map_err(|e| e.to_string())?;
    db.execute_unprepared("ANALYZE subscriptions").await.map_err(|e| e.to_string())?;
    Ok(())
}

/// One HTTP/2 connection to `target`, without Nagle's delay (every load generator's channel).
pub async fn connect(target: String) -> Result<Channel, String> {
    tonic::transport::Endpoint::from_shared(target.clone())
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("connect {target}: {e}"))
}

/// `grpc.health.v1.Health/Check` of the whole server.
pub async fn health_check(channel: &Channel) -> Result<(), Status> {
    let mut health = HealthClient::new(channel.clone());
    health.check(HealthCheckRequest { service: String::new() }).await.map(drop)
}

/// GetPartner of one of the seeded partners, chosen by `worker` and its `count`th call.
pub async fn get_partner(fixture: &Fixture, channel: &Channel, worker: usize, count: usize) -> Result<(), Status> {
    let name = fixture.partners[(worker * 7919 + count) % fixture.partners.len()].clone();
    let mut client: PartnerServiceClient<Auth> =
        PartnerServiceClient::with_interceptor(channel.clone(), fixture.operator.clone());
    client.get_partner(GetPartnerRequest { name }).await.map(drop)
}

/// One operation of `scenario`; worker `worker` on its `count`th call.
pub async fn operate(
    scenario: Scenario,
    fixture: &Fixture,
    channel: &Channel,
    worker: usize,
    count: usize,
) -> Result<(), String> {
    let status = |s: Status| status_text(&s);
    match scenario {
        Scenario::Health => health_check(channel).await.map_err(status),
        Scenario::GetPartner => get_partner(fixture, channel, worker, count).await.map_err(status),
        Scenario::CreatePartner => enrol(channel, &fixture.operator, ProgramRole::DirectBillPartner).await.map(drop),
        Scenario::ListSubscriptions => {
            let lister = fixture.lister.clone().ok_or("no lister seeded")?;
            let mut client = ChannelServiceClient::with_interceptor(channel.clone(), lister);
            let page = client
                .list_subscriptions(ListSubscriptionsRequest { page_size: 50, ..Default::default() })
                .await
                .map_err(status)?
                .into_inner();
            if page.subscriptions.len() == 50 { Ok(()) } else { Err(format!("a page of {}", page.subscriptions.len())) }
        }
        Scenario::TwoTierFlow => {
            let provider = fixture.provider.as_ref().ok_or("no provider seeded")?;
            two_tier(channel, &Tokens::new(&fixture.tokens_secret), &fixture.operator, provider).await
        }
        Scenario::Transfer => transfer(fixture, channel, worker, count).await,
    }
}

/// Worker `worker`'s `count`th transfer: its ten subscriptions to the second partner on an even
/// count, back to the first on an odd one.
async fn transfer(fixture: &Fixture, channel: &Channel, worker: usize, count: usize) -> Result<(), String> {
    let transfers = fixture.transfers.as_ref().ok_or("no transfers seeded")?;
    let batch = &transfers.batches[worker % transfers.batches.len()];
    let [first, second] = &transfers.partners;
    let (source, target) = if count.is_multiple_of(2) { (first, second) } else { (second, first) };
    let tokens = Tokens::new(&fixture.tokens_secret);
    let status = |s: Status| status_text(&s);
    let mut as_target = ChannelServiceClient::with_interceptor(channel.clone(), tokens.bearer(target)?);
    let asked = as_target
        .create_transfer(CreateTransferRequest {
            transfer: Some(Transfer {
                customer: transfers.customer.clone(),
                source_partner: source.clone(),
                target_partner: target.clone(),
                subscriptions: batch.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map_err(status)?
        .into_inner();
    let mut as_source = ChannelServiceClient::with_interceptor(channel.clone(), tokens.bearer(source)?);
    as_source.accept_transfer(AcceptTransferRequest { name: asked.name, etag: asked.etag }).await.map_err(status)?;
    Ok(())
}
