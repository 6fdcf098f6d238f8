//! The `reseller_links` table and its queries.

use pc_domain::{Error, LinkState, LinkState as State, PageRequest, PartnerId, ResellerLinkId};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{
    Database,
    db::{keyset_page, now, unique_violation_as},
    locks::{Lock, find_locked as find_locked_row, locked},
};

/// The table `reseller_links`: two-tier links between an indirect provider and an indirect reseller.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reseller_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider_id: Uuid,
    pub reseller_id: Uuid,
    pub state: LinkState,
    pub accept_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    /// When the waiting state expires (rule 15); unset for rows asked for before expiry existed.
    pub expire_time: Option<DateTimeUtc>,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::ResellerLinkId, lifecycle pc_domain::LinkState, "ResellerLink", locked ResellerLinks);

impl Model {
    /// What the rules read of this row.
    pub fn facts(&self) -> pc_domain::reseller_links::ResellerLink {
        pc_domain::reseller_links::ResellerLink {
            id: ResellerLinkId(self.id),
            provider: PartnerId(self.provider_id),
            reseller: PartnerId(self.reseller_id),
            state: self.state,
        }
    }
}

/// The link rows of one provider and reseller (rule 4: one of them live at a time).
pub fn of_pair(provider: PartnerId, reseller: PartnerId) -> sea_orm::Condition {
    sea_orm::Condition::all().add(Column::ProviderId.eq(provider.0)).add(Column::ResellerId.eq(reseller.0))
}

/// Inserts an INVITED link; a live (INVITED or ACTIVE) link of the pair is ALREADY_EXISTS.
pub async fn insert(
    db: &impl ConnectionTrait,
    provider: PartnerId,
    reseller: PartnerId,
    expire_time: DateTimeUtc,
) -> Result<Model, Error> {
    let time = now();
    let row = ActiveModel {
        id: Set(ResellerLinkId::generate().0),
        provider_id: Set(provider.0),
        reseller_id: Set(reseller.0),
        state: Set(State::Invited),
        accept_time: Set(None),
        end_time: Set(None),
        expire_time: Set(Some(expire_time)),
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
    /// The partner whose links these are (`pc_domain::reseller_links::list_party`), or
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
