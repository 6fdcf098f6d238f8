//! The two-tier flow with the typed client: an operator enrols an indirect provider and an
//! indirect reseller, the provider invites the reseller, the reseller accepts, and the provider
//! lists its links.
//!
//! ```sh
//! AUTH_JWT_SECRET=… cargo run -p partner-center-client --example two_tier -- http://127.0.0.1:50050
//! ```

use std::time::Duration;

use partner_center_client::{Client, ListPager, TokenSource, retry_idempotent};
use pc_api::partner::v1::{CreatePartnerRequest, Partner, ProgramRole};
use pc_api::relationship::v1::{
    AcceptResellerLinkRequest, InviteResellerRequest, ListResellerLinksRequest, ResellerLink, reseller_link::State,
};
use pc_api::types::v1::Cloud;

/// Tokens for `subject`, minted with the services' shared secret.
fn tokens(secret: &str, subject: &str) -> TokenSource {
    TokenSource::Secret { secret: secret.to_owned(), subject: subject.to_owned(), ttl: Duration::from_secs(600) }
}

/// Runs the flow against the server behind `operator`'s channel; returns the ACTIVE link as the
/// provider lists it.
pub async fn run(operator: &Client, secret: &str) -> Result<ResellerLink, Box<dyn std::error::Error>> {
    let enrol = async |name: &str, role: ProgramRole| {
        let partner = Partner {
            display_name: name.to_owned(),
            tenant_id: uuid::Uuid::new_v4().to_string(),
            country_code: "US".to_owned(),
            cloud: Cloud::Global as i32,
            program_role: role as i32,
            ..Default::default()
        };
        // A create with a request_id is safe to repeat: a retry gets the first answer.
        let request = CreatePartnerRequest { partner: Some(partner), request_id: uuid::Uuid::new_v4().to_string() };
        retry_idempotent(|| {
            let mut partners = operator.partners();
            let request = request.clone();
            async move { partners.create_partner(request).await }
        })
        .await
        .map(|response| response.into_inner().name)
    };
    let provider = enrol("Example Distribution", ProgramRole::IndirectProvider).await?;
    let reseller = enrol("Example Resellers", ProgramRole::IndirectReseller).await?;

    let as_provider = operator.with_tokens(tokens(secret, &provider));
    let invitation =
        InviteResellerRequest { provider: provider.clone(), reseller: reseller.clone(), ..Default::default() };
    let link = as_provider.relationships().invite_reseller(invitation).await?.into_inner();
    let as_reseller = operator.with_tokens(tokens(secret, &reseller));
    as_reseller
        .relationships()
        .accept_reseller_link(AcceptResellerLinkRequest { name: link.name, etag: link.etag })
        .await?;

    let links = ListPager::new(ListResellerLinksRequest { page_size: 10, ..Default::default() })
        .collect(async |request| as_provider.relationships().list_reseller_links(request).await)
        .await?;
    let active = links.into_iter().find(|link| link.state() == State::Active).ok_or("no ACTIVE link listed")?;
    Ok(active)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:50050".to_owned());
    let secret = std::env::var("AUTH_JWT_SECRET").map_err(|_| "set AUTH_JWT_SECRET to the server's secret")?;
    let operator = Client::connect(address, tokens(&secret, "operator")).await?;
    let link = run(&operator, &secret).await?;
    println!("{} is {:?}: {} sells through {}", link.name, link.state(), link.reseller, link.provider);
    Ok(())
}
