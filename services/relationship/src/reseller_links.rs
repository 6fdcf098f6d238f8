//! Reseller link handlers: InviteReseller, AcceptResellerLink, DeclineResellerLink,
//! EndResellerLink, GetResellerLink and ListResellerLinks.
//!
//! An ACTIVE indirect provider invites an ACTIVE indirect reseller of its cloud; the reseller
//! accepts or declines; either side ends. Only the two parties and operators see a link.

use pc_api::relationship::v1::{
    GetResellerLinkRequest, InviteResellerRequest, ListResellerLinksRequest, ListResellerLinksResponse, ResellerLink,
};
use pc_domain::reseller_links as rules;
use pc_domain::{Error, Etag, LinkState as State, PageKey, PartnerId, Principal, ResellerLinkId, ResourceKind};
use pc_server::convert::{ProtoEnum, filter_enum, list_page, optional_timestamp, timestamp};
use pc_server::create::Create;
use pc_server::expiry;
use pc_server::lifecycle::{self, Transition};
use pc_store::{
    Database, DatabaseTransaction,
    locks::Lock,
    partners,
    reseller_links::{self, LinkFilter, Model},
    subscriptions,
};

pub fn to_proto(row: Model) -> Result<ResellerLink, Error> {
    Ok(ResellerLink {
        name: ResellerLinkId(row.id).name(),
        provider: PartnerId(row.provider_id).name(),
        reseller: PartnerId(row.reseller_id).name(),
        state: row.state.to_proto(),
        accept_time: optional_timestamp(row.accept_time),
        end_time: optional_timestamp(row.end_time),
        expire_time: optional_timestamp(row.expire_time),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

pub async fn invite_reseller(
    db: &Database,
    caller: Principal,
    request: InviteResellerRequest,
) -> Result<ResellerLink, Error> {
    let create = Create::new(caller, "InviteReseller", &request)?;
    let provider_id = PartnerId::parse("provider", &request.provider)?;
    let reseller_id = PartnerId::parse("reseller", &request.reseller)?;
    if provider_id == reseller_id {
        return Err(Error::invalid("reseller", "must be another partner than the provider"));
    }
    caller.require_partner_or_operator(provider_id, "invite resellers for this provider")?;

    let insert = async |txn: &DatabaseTransaction| {
        let [provider, reseller] =
            <[_; 2]>::try_from(partners::get_locked(txn, &[provider_id, reseller_id], Lock::Share).await?)
                .map_err(|_| Error::internal("two partners asked, another number returned"))?;
        rules::invite_reseller(&provider.facts(), &reseller.facts())?;
        // A lapsed invitation of the pair expires now rather than holding the pair (rule 15).
        expiry::expire_lapsed::<ResellerLinks>(txn, reseller_links::of_pair(provider_id, reseller_id)).await?;
        let row =
            reseller_links::insert(txn, provider_id, reseller_id, db.deadline(ResourceKind::ResellerLink)).await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    let link = create.run(db, insert, to_proto).await?;
    tracing::info!(link = %link.name, provider = %link.provider, reseller = %link.reseller, "reseller invited");
    Ok(link)
}

/// AcceptResellerLink, DeclineResellerLink and EndResellerLink: the one lifecycle
/// ([`lifecycle::run`]) with the rules of a reseller link.
pub struct ResellerLinks;

impl lifecycle::Workflow for ResellerLinks {
    type Row = Model;
    type Parties = rules::ResellerLink;
    /// The provider and the reseller, locked FOR SHARE, when accepting.
    type Grounds = Vec<partners::Model>;

    async fn parties(_: &DatabaseTransaction, link: &Model) -> Result<rules::ResellerLink, Error> {
        Ok(link.facts())
    }

    async fn lock_grounds(
        txn: &DatabaseTransaction,
        link: &rules::ResellerLink,
        transition: Transition,
    ) -> Result<Self::Grounds, Error> {
        match transition {
            Transition::Accept => partners::get_locked(txn, &[link.provider, link.reseller], Lock::Share).await,
            Transition::Decline | Transition::End | Transition::Expire => Ok(Vec::new()),
        }
    }

    async fn check(
        txn: &DatabaseTransaction,
        link: &Model,
        transition: Transition,
        parties: Self::Grounds,
    ) -> Result<(), Error> {
        let link = link.facts();
        match (transition, parties.as_slice()) {
            (Transition::Accept, [provider, reseller]) => rules::accept(&provider.facts(), &reseller.facts())?,
            (Transition::Accept, _) => return Err(Error::internal(format!("{}'s partners did not load", link.id))),
            // Counted after the link is locked: a sale that shares the link has committed by now.
            // Only an ACTIVE link carries sales; an INVITED one ends without counting them.
            (Transition::End, _) if link.state == State::Active => {
                let carries = subscriptions::active_through_link(txn, link.provider, link.reseller).await?;
                rules::end(&link, carries)?;
            }
            (Transition::End | Transition::Decline | Transition::Expire, _) => {}
        }
        Ok(())
    }
}

pub async fn get_reseller_link(
    db: &Database,
    caller: Principal,
    request: GetResellerLinkRequest,
) -> Result<ResellerLink, Error> {
    let id = ResellerLinkId::parse("name", &request.name)?;
    let link = reseller_links::read(db, id).await?;
    // Only its parties see a link (rule 9); anyone else learns nothing, not even whether it exists.
    to_proto(
        pc_server::access::to_read(db.reader(), &caller, ResourceKind::ResellerLink, id, link, Model::facts).await?.0,
    )
}

pub async fn list_reseller_links(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListResellerLinksRequest,
) -> Result<ListResellerLinksResponse, Error> {
    let filter = LinkFilter {
        party: rules::list_party(&caller)?,
        provider: PartnerId::parse_optional("provider", &request.provider)?,
        reseller: PartnerId::parse_optional("reseller", &request.reseller)?,
        state: filter_enum("state", request.state)?,
    };
    let fetch = |conn, page| async move { reseller_links::list(&conn, filter, page).await };
    list_page(db, &request, pages, &filter, fetch, to_proto).await
}
