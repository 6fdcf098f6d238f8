//! Reseller link handlers: InviteReseller, AcceptResellerLink, DeclineResellerLink,
//! EndResellerLink, GetResellerLink and ListResellerLinks.
//!
//! An ACTIVE indirect provider invites an ACTIVE indirect reseller of its cloud; the reseller
//! accepts or declines; either side ends. Only the two parties and operators see a link.

use pc_api::relationship::v1::{
    InviteResellerRequest, ListResellerLinksRequest, ListResellerLinksResponse, ResellerLink,
};
use pc_domain::{Error, Etag, PageKey, PartnerId, Principal, Reason, ResellerLinkId};
use pc_domain::{Lifecycle, LinkState as State, ProgramRole};
use pc_server::convert::{ProtoEnum, filter_enum, idempotency_key, list_page, optional_timestamp, timestamp};
use pc_store::{
    ConnectionTrait, Database, audit,
    entity::reseller_link::Model,
    idempotency,
    lifecycle::{self, Transition},
    locks::Lock,
    partners,
    reseller_links::{self, LinkFilter},
    rules, subscriptions,
};

pub fn to_proto(row: Model) -> Result<ResellerLink, Error> {
    Ok(ResellerLink {
        name: ResellerLinkId(row.id).name(),
        provider: PartnerId(row.provider_id).name(),
        reseller: PartnerId(row.reseller_id).name(),
        state: row.state.to_proto(),
        accept_time: optional_timestamp(row.accept_time),
        end_time: optional_timestamp(row.end_time),
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
    let key = idempotency_key(&caller, "InviteReseller", &request)?;
    let provider_id = PartnerId::parse("provider", &request.provider)?;
    let reseller_id = PartnerId::parse("reseller", &request.reseller)?;
    if provider_id == reseller_id {
        return Err(Error::invalid("reseller", "must be another partner than the provider"));
    }
    caller.require_partner_or_operator(provider_id, "invite resellers for this provider")?;

    let link = idempotency::create_once(db, key.as_ref(), async |txn| {
        let [provider, reseller] =
            <[_; 2]>::try_from(partners::get_locked(txn, &[provider_id, reseller_id], Lock::Share).await?)
                .map_err(|_| Error::internal("two partners asked, another number returned"))?;
        rules::partner_role(&provider, ProgramRole::IndirectProvider, "invite resellers")?;
        rules::partner_role(&reseller, ProgramRole::IndirectReseller, "be invited as a reseller")?;
        rules::same_cloud((&request.provider, provider.cloud), (&request.reseller, reseller.cloud))?;
        rules::partner_active(&provider)?;
        rules::partner_active(&reseller)?;
        let link = to_proto(reseller_links::insert(txn, provider_id, reseller_id).await?)?;
        audit::append(
            txn,
            &link.name,
            "InviteReseller",
            &caller,
            serde_json::json!({ "provider": link.provider, "reseller": link.reseller, "state": State::Invited.as_str() }),
        )
        .await?;
        Ok(link)
    })
    .await?;
    tracing::info!(link = %link.name, provider = %link.provider, reseller = %link.reseller, "reseller invited");
    Ok(link)
}

/// The link, if `caller` is one of its parties or an operator. Non-parties learn nothing, not
/// even whether it exists.
async fn load_visible(db: &impl ConnectionTrait, caller: &Principal, id: ResellerLinkId) -> Result<Model, Error> {
    visible(caller, id, reseller_links::find(db, id).await?)
}

/// `link`, if `caller` is a party to it; anyone else is PERMISSION_DENIED whether or not it exists.
fn visible(caller: &Principal, id: ResellerLinkId, link: Option<Model>) -> Result<Model, Error> {
    match (caller, link) {
        (Principal::Operator, Some(link)) => Ok(link),
        (Principal::Operator, None) => Err(Error::not_found(id.name())),
        (Principal::Partner(me), Some(link)) if me.0 == link.provider_id || me.0 == link.reseller_id => Ok(link),
        _ => Err(Error::denied(format!("{caller} is not a party to {id}"))),
    }
}

/// AcceptResellerLink, DeclineResellerLink and EndResellerLink.
pub async fn transition(
    db: &Database,
    caller: Principal,
    transition: Transition,
    name: &str,
    etag: &str,
) -> Result<ResellerLink, Error> {
    let id = ResellerLinkId::parse("name", name)?;
    let etag = Etag::parse_optional("etag", etag)?;

    let txn = db.begin().await?;
    // Parties never change: read without a lock to authorize and to know what to lock.
    let seen = load_visible(&txn, &caller, id).await?;
    let (provider_id, reseller_id) = (PartnerId(seen.provider_id), PartnerId(seen.reseller_id));
    if transition != Transition::End {
        // Only the invited side answers an invitation.
        caller.require_partner_or_operator(reseller_id, &format!("{} this invitation", transition.verb()))?;
    }
    // Lock order (crate pc_store::locks): the partners an accept needs ACTIVE, then the link.
    let parties = match transition {
        Transition::Accept => partners::get_locked(&txn, &[provider_id, reseller_id], Lock::Share).await?,
        Transition::Decline | Transition::End => Vec::new(),
    };
    let mut link = reseller_links::find_locked(&txn, id, Lock::Update)
        .await?
        .ok_or_else(|| Error::internal(format!("{id} disappeared")))?;
    Etag::check(etag, link.revision, id)?;
    if !link.state.allows(transition) {
        return Err(Error::rule(
            Reason::InvalidTransition,
            format!("cannot {} {id}: it is {}", transition.verb(), link.state),
        ));
    }
    match transition {
        Transition::Accept => parties.iter().try_for_each(rules::partner_active)?,
        // Counted after the link is locked: a sale that shares the link has committed by now.
        Transition::End if link.state == State::Active => {
            if subscriptions::active_through_link(&txn, provider_id, reseller_id).await? {
                return Err(Error::rule(
                    Reason::ActiveSubscriptions,
                    format!("{id} still carries ACTIVE subscriptions billed by {provider_id} through {reseller_id}"),
                ));
            }
        }
        Transition::End | Transition::Decline => {}
    }
    lifecycle::transition(&txn, &mut link, transition, &caller)
        .await
        .map_err(|error| Etag::explain_conflict(error, etag, id))?;
    txn.commit().await?;

    tracing::info!(link = %id, state = %link.state, "reseller link changed");
    to_proto(link)
}

pub async fn get_reseller_link(db: &Database, caller: Principal, name: &str) -> Result<ResellerLink, Error> {
    let id = ResellerLinkId::parse("name", name)?;
    to_proto(visible(&caller, id, reseller_links::read(db, id).await?)?)
}

pub async fn list_reseller_links(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListResellerLinksRequest,
) -> Result<ListResellerLinksResponse, Error> {
    let filter = LinkFilter {
        party: match caller {
            Principal::Operator => None,
            Principal::Partner(me) => Some(me),
            Principal::Customer(_) => return Err(Error::denied("customers are not parties to reseller links")),
        },
        provider: PartnerId::parse_optional("provider", &request.provider)?,
        reseller: PartnerId::parse_optional("reseller", &request.reseller)?,
        state: filter_enum("state", request.state)?,
    };
    let query = format!("{caller}|{filter:?}");
    let (reseller_links, next_page_token) = list_page(
        &request,
        &query,
        pages,
        async |page| reseller_links::list(db.reader(), filter, page).await,
        to_proto,
    )
    .await?;
    Ok(ListResellerLinksResponse { reseller_links, next_page_token })
}
