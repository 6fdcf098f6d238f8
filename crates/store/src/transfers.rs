//! The `transfers` table and its queries: the transfers themselves, the subscriptions a
//! customer's PENDING transfers hold (rule 11: none in two), and each party's list.

use chrono::{DateTime, Utc};
use pc_domain::{
    CustomerId, Error, PageRequest, PartnerId, Principal, SubscriptionId, TransferId, TransferState,
    TransferState as State,
};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{
    Database,
    db::{keyset_page, now},
};

/// The table `transfers`: subscriptions a target partner asked a source partner to hand over.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transfers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub source_partner_id: Uuid,
    pub target_partner_id: Uuid,
    pub indirect_provider_id: Option<Uuid>,
    /// The subscriptions it moves, their ids separated by spaces.
    pub subscription_ids: String,
    pub state: TransferState,
    pub accept_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    pub expire_time: DateTimeUtc,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::TransferId, lifecycle pc_domain::TransferState, "Transfer", locked Transfers);

impl Model {
    /// What the rules read of this row.
    pub fn facts(&self) -> pc_domain::transfers::Transfer {
        pc_domain::transfers::Transfer {
            id: TransferId(self.id),
            customer: CustomerId(self.customer_id),
            source: PartnerId(self.source_partner_id),
            target: PartnerId(self.target_partner_id),
            indirect_provider: self.indirect_provider_id.map(PartnerId),
            subscriptions: self.subscriptions(),
            state: self.state,
            expire_time: self.expire_time,
        }
    }

    /// The subscriptions it moves, in the order the transfer lists them.
    pub fn subscriptions(&self) -> Vec<SubscriptionId> {
        self.subscription_ids.split_whitespace().filter_map(|id| id.parse().ok()).map(SubscriptionId).collect()
    }
}

/// A transfer about to be created, its rules checked.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    pub customer: CustomerId,
    pub source: PartnerId,
    pub target: PartnerId,
    pub indirect_provider: Option<PartnerId>,
    pub subscriptions: Vec<SubscriptionId>,
    pub expire_time: DateTime<Utc>,
}

/// Inserts a PENDING transfer.
pub async fn insert(db: &impl ConnectionTrait, new: NewTransfer) -> Result<Model, Error> {
    let time = now();
    let ids: Vec<String> = new.subscriptions.iter().map(|id| id.0.hyphenated().to_string()).collect();
    let row = ActiveModel {
        id: Set(TransferId::generate().0),
        customer_id: Set(new.customer.0),
        source_partner_id: Set(new.source.0),
        target_partner_id: Set(new.target.0),
        indirect_provider_id: Set(new.indirect_provider.map(|p| p.0)),
        subscription_ids: Set(ids.join(" ")),
        state: Set(State::Pending),
        accept_time: Set(None),
        end_time: Set(None),
        expire_time: Set(new.expire_time),
        revision: Set(1),
        create_time: Set(time),
        update_time: Set(time),
    };
    Ok(row.insert(db).await?)
}

/// The transfer as last committed, if any: a read outside any transaction (a Get).
pub async fn read(db: &Database, id: TransferId) -> Result<Option<Model>, Error> {
    Ok(db.find_by_id::<Entity>(id.0).await?)
}

/// The subscriptions held by `customer`'s PENDING transfers that have not passed their deadline
/// at `now` (rule 11: none may be in a second one). Read after the subscriptions are locked FOR
/// UPDATE, so a transfer of the same subscription created meanwhile has committed.
pub async fn pending_subscriptions(
    db: &impl ConnectionTrait,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> Result<Vec<SubscriptionId>, Error> {
    let pending = Entity::find()
        .filter(Column::CustomerId.eq(customer.0))
        .filter(Column::State.eq(State::Pending))
        .filter(Column::ExpireTime.gt(now))
        .all(db)
        .await?;
    Ok(pending.iter().flat_map(Model::subscriptions).collect())
}

/// ListTransfers filters.
#[derive(Debug, Clone, Copy)]
pub struct TransferFilter {
    /// Who lists: its view (rule 9, `pc_domain::transfers::may_see`, as SQL: a partner those it
    /// is source or target of, a customer its own) bounds the list; the other fields narrow it.
    pub viewer: Principal,
    pub customer: Option<CustomerId>,
    /// Transfers with this partner as source or target.
    pub partner: Option<PartnerId>,
    pub state: Option<State>,
}

fn either_side(partner: PartnerId) -> Condition {
    Condition::any().add(Column::SourcePartnerId.eq(partner.0)).add(Column::TargetPartnerId.eq(partner.0))
}

/// One page of transfers in id (creation) order, plus one extra row.
pub async fn list(db: &impl ConnectionTrait, filter: TransferFilter, page: PageRequest) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    match filter.viewer {
        Principal::Operator => {}
        Principal::Partner(party) => query = query.filter(either_side(party)),
        Principal::Customer(customer) => query = query.filter(Column::CustomerId.eq(customer.0)),
    }
    if let Some(customer) = filter.customer {
        query = query.filter(Column::CustomerId.eq(customer.0));
    }
    if let Some(partner) = filter.partner {
        query = query.filter(either_side(partner));
    }
    if let Some(state) = filter.state {
        query = query.filter(Column::State.eq(state));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
