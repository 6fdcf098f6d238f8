//! The `partners` table and its queries.

use pc_domain::{Cloud, Error, PageRequest, PartnerId, PartnerState, PartnerState as State, ProgramRole, TenantId};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

use crate::{
    Database,
    db::{keyset_page, now, unique_violation_as},
    locks::{Lock, find_locked as find_locked_row, locked},
};

/// The table `partners`: the program's enrolled partners.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "partners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub display_name: String,
    pub tenant_id: Uuid,
    pub country_code: String,
    pub cloud: Cloud,
    pub program_role: ProgramRole,
    pub state: PartnerState,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::PartnerId, state, locked Partners);

impl Model {
    /// What the rules read of this row.
    pub fn facts(&self) -> pc_domain::partners::Partner {
        pc_domain::partners::Partner {
            id: PartnerId(self.id),
            cloud: self.cloud,
            role: self.program_role,
            state: self.state,
        }
    }
}

/// A partner about to be enrolled, already validated.
#[derive(Debug, Clone)]
pub struct NewPartner {
    pub display_name: String,
    pub tenant_id: TenantId,
    pub country_code: String,
    pub cloud: Cloud,
    pub program_role: ProgramRole,
}

/// Inserts an ACTIVE partner; a tenant already enrolled in that cloud is ALREADY_EXISTS.
pub async fn insert(db: &impl ConnectionTrait, new: NewPartner) -> Result<Model, Error> {
    let time = now();
    let row = ActiveModel {
        id: Set(PartnerId::generate().0),
        display_name: Set(new.display_name),
        tenant_id: Set(new.tenant_id.0),
        country_code: Set(new.country_code),
        cloud: Set(new.cloud),
        program_role: Set(new.program_role),
        state: Set(State::Active),
        revision: Set(1),
        create_time: Set(time),
        update_time: Set(time),
    };
    row.insert(db).await.map_err(|e| {
        unique_violation_as(e, || {
            Error::already_exists(
                "TENANT_ALREADY_ENROLLED",
                format!("tenant {} is already enrolled as a partner in this cloud", new.tenant_id.0),
            )
        })
    })
}

/// The partners `ids`, in the order asked, locked as `lock` in ascending id (the lock protocol
/// of [`crate::locks`]); one that does not exist is NOT_FOUND.
pub async fn get_locked(db: &impl ConnectionTrait, ids: &[PartnerId], lock: Lock) -> Result<Vec<Model>, Error> {
    let query = Entity::find().filter(Column::Id.is_in(ids.iter().map(|id| id.0))).order_by_asc(Column::Id);
    let rows = locked(query, lock).all(db).await?;
    ids.iter()
        .map(|id| rows.iter().find(|row| row.id == id.0).cloned().ok_or_else(|| Error::not_found(id.name())))
        .collect()
}

/// The partner, locked as `lock`, if it exists.
pub async fn find_locked(db: &impl ConnectionTrait, id: PartnerId, lock: Lock) -> Result<Option<Model>, Error> {
    find_locked_row::<Entity>(db, id.0, lock).await
}

/// The partner, locked as `lock`, or NOT_FOUND.
pub async fn get_one_locked(db: &impl ConnectionTrait, id: PartnerId, lock: Lock) -> Result<Model, Error> {
    find_locked(db, id, lock).await?.ok_or_else(|| Error::not_found(id.name()))
}

pub async fn find(db: &impl ConnectionTrait, id: PartnerId) -> Result<Option<Model>, Error> {
    Ok(Entity::find_by_id(id.0).one(db).await?)
}

/// The partner, or NOT_FOUND.
pub async fn get(db: &impl ConnectionTrait, id: PartnerId) -> Result<Model, Error> {
    find(db, id).await?.ok_or_else(|| Error::not_found(id.name()))
}

/// The partner as last committed, or NOT_FOUND: a read outside any transaction (GetPartner).
pub async fn read(db: &Database, id: PartnerId) -> Result<Model, Error> {
    db.find_by_id::<Entity>(id.0).await?.ok_or_else(|| Error::not_found(id.name()))
}

/// Whether `tenant` is enrolled as a partner in `cloud` (rule 1).
pub async fn tenant_enrolled(db: &impl ConnectionTrait, cloud: Cloud, tenant: TenantId) -> Result<bool, Error> {
    let count = Entity::find().filter(Column::Cloud.eq(cloud)).filter(Column::TenantId.eq(tenant.0)).count(db).await?;
    Ok(count > 0)
}

/// ListPartners filters; `None` means any.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartnerFilter {
    pub cloud: Option<Cloud>,
    pub program_role: Option<ProgramRole>,
    pub state: Option<State>,
}

/// One page of partners in id (creation) order, fetching one extra row to detect a next page.
pub async fn list(db: &impl ConnectionTrait, filter: PartnerFilter, page: PageRequest) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    if let Some(cloud) = filter.cloud {
        query = query.filter(Column::Cloud.eq(cloud));
    }
    if let Some(role) = filter.program_role {
        query = query.filter(Column::ProgramRole.eq(role));
    }
    if let Some(state) = filter.state {
        query = query.filter(Column::State.eq(state));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
