//! Queries on `reseller_links`.

use pc_domain::LinkState as State;
use pc_domain::{Error, PageRequest, PartnerId, ResellerLinkId};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{
    Database,
    db::{keyset_page, now, unique_violation_as},
    entity::reseller_link::{self, Column, Entity, Model},
    locks::{Lock, find_locked as find_locked_row, locked},
};

/// Inserts an INVITED link; a live (INVITED or ACTIVE) link of the pair is ALREADY_EXISTS.
pub async fn insert(db: &impl ConnectionTrait, provider: PartnerId, reseller: PartnerId) -> Result<Model, Error> {
    let time = now();
    let row = reseller_link::ActiveModel {
        id: Set(ResellerLinkId::generate().0),
        provider_id: Set(provider.0),
        reseller_id: Set(reseller.0),
        state: Set(State::Invited),
        accept_time: Set(None),
        end_time: Set(None),
        revision: Set(1),
        create_time: Set(time),
        update_time: Set(time),
    };
    row.insert(db).await.map_err(|e| {
        unique_violation_as(e, || {
            Error::already_exists(
                "LIVE_LINK_EXISTS",
                format!("{provider} and {reseller} already have an INVITED or ACTIVE reseller link"),
            )
        })
    })
}

pub async fn find(db: &impl ConnectionTrait, id: ResellerLinkId) -> Result<Option<Model>, Error> {
    Ok(Entity::find_by_id(id.0).one(db).await?)
}

/// The link as last committed, if any: a read outside any transaction (a Get).
pub async fn read(db: &Database, id: ResellerLinkId) -> Result<Option<Model>, Error> {
    Ok(db.find_by_id::<Entity>(id.0).await?)
}

/// The link `id`, locked as `lock` (see [`crate::locks`]).
pub async fn find_locked(db: &impl ConnectionTrait, id: ResellerLinkId, lock: Lock) -> Result<Option<Model>, Error> {
    find_locked_row::<Entity>(db, id.0, lock).await
}

/// Whether `provider` and `reseller` work together now (an ACTIVE link), with the link locked FOR
/// SHARE (`LockOrder::ResellerLinks`): the caller's rule depends on it staying ACTIVE until the
/// caller commits.
pub async fn lock_active(db: &impl ConnectionTrait, provider: PartnerId, reseller: PartnerId) -> Result<bool, Error> {
    let query = Entity::find()
        .filter(Column::ProviderId.eq(provider.0))
        .filter(Column::ResellerId.eq(reseller.0))
        .filter(Column::State.eq(State::Active));
    Ok(locked(query, Lock::Share).one(db).await?.is_some())
}

/// ListResellerLinks filters, plus whose links the caller may see (`party`, `None` for operators).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkFilter {
    /// The partner whose links these are (`pc_domain::rules::reseller_links::list_party`), or
    /// `None` for every link.
    pub party: Option<PartnerId>,
    pub provider: Option<PartnerId>,
    pub reseller: Option<PartnerId>,
    pub state: Option<State>,
}

/// One page of links in id (creation) order, plus one extra row.
pub async fn list(db: &impl ConnectionTrait, filter: LinkFilter, page: PageRequest) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    if let Some(party) = filter.party {
        query = query.filter(Condition::any().add(Column::ProviderId.eq(party.0)).add(Column::ResellerId.eq(party.0)));
    }
    if let Some(provider) = filter.provider {
        query = query.filter(Column::ProviderId.eq(provider.0));
    }
    if let Some(reseller) = filter.reseller {
        query = query.filter(Column::ResellerId.eq(reseller.0));
    }
    if let Some(state) = filter.state {
        query = query.filter(Column::State.eq(state));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
