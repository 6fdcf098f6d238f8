//! Queries on `subscriptions`, including rule 9: which subscriptions a partner sees.

use pc_api::channel::v1::{ProductFamily, SalesChannel, subscription::State};
use pc_domain::{CustomerId, Error, PageRequest, PartnerId, SubscriptionId};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::{Expr, Query},
};

use crate::{
    db::{keyset_page, now},
    entity::{
        subscription::{self, Column, Entity, Model},
        support_assignment,
    },
    enums::DbEnum,
};

pub const TABLE: &str = "subscriptions";

/// A subscription about to be created, already validated and with its channel derived.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub customer: CustomerId,
    pub offer_id: String,
    pub product_family: ProductFamily,
    pub quantity: i32,
    pub sales_channel: SalesChannel,
    pub partner_of_record: Option<PartnerId>,
    pub billing_partner: Option<PartnerId>,
}

/// Inserts an ACTIVE subscription.
pub async fn insert(db: &impl ConnectionTrait, new: NewSubscription) -> Result<Model, Error> {
    let time = now();
    let row = subscription::ActiveModel {
        id: Set(SubscriptionId::generate().0),
        customer_id: Set(new.customer.0),
        offer_id: Set(new.offer_id),
        product_family: Set(new.product_family.to_db().to_owned()),
        quantity: Set(new.quantity),
        sales_channel: Set(new.sales_channel.to_db().to_owned()),
        partner_of_record_id: Set(new.partner_of_record.map(|p| p.0)),
        billing_partner_id: Set(new.billing_partner.map(|p| p.0)),
        state: Set(State::Active.to_db().to_owned()),
        revision: Set(1),
        create_time: Set(time),
        update_time: Set(time),
    };
    Ok(row.insert(db).await?)
}

pub async fn find(db: &impl ConnectionTrait, id: SubscriptionId) -> Result<Option<Model>, Error> {
    Ok(Entity::find_by_id(id.0).one(db).await?)
}

/// Rule 9: the subscriptions `partner` sees are those it transacts (partner of record), bills,
/// or supports through an ACTIVE support assignment.
fn seen_by(partner: PartnerId) -> Condition {
    let supported = Query::select()
        .column(support_assignment::Column::SubscriptionId)
        .from(support_assignment::Entity)
        .and_where(support_assignment::Column::PartnerId.eq(partner.0))
        .and_where(support_assignment::Column::State.eq("ACTIVE"))
        .to_owned();
    Condition::any()
        .add(Column::PartnerOfRecordId.eq(partner.0))
        .add(Column::BillingPartnerId.eq(partner.0))
        .add(Column::Id.in_subquery(supported))
}

/// Whether `partner` sees `subscription` (rule 9).
pub async fn visible_to_partner(
    db: &impl ConnectionTrait,
    id: SubscriptionId,
    partner: PartnerId,
) -> Result<bool, Error> {
    let count = Entity::find().filter(Column::Id.eq(id.0)).filter(seen_by(partner)).count(db).await?;
    Ok(count > 0)
}

/// Whose subscriptions a list covers.
#[derive(Debug, Clone, Copy)]
pub enum SubscriptionScope {
    All,
    Partner(PartnerId),
    Customer(CustomerId),
}

/// ListSubscriptions filters.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionFilter {
    pub scope: SubscriptionScope,
    pub customer: Option<CustomerId>,
    /// Only what this partner sees.
    pub partner: Option<PartnerId>,
    pub state: Option<State>,
}

/// One page of subscriptions in id (creation) order, plus one extra row.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: SubscriptionFilter,
    page: PageRequest,
) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    match filter.scope {
        SubscriptionScope::All => {}
        SubscriptionScope::Partner(partner) => query = query.filter(seen_by(partner)),
        SubscriptionScope::Customer(customer) => query = query.filter(Column::CustomerId.eq(customer.0)),
    }
    if let Some(customer) = filter.customer {
        query = query.filter(Column::CustomerId.eq(customer.0));
    }
    if let Some(partner) = filter.partner {
        query = query.filter(seen_by(partner));
    }
    if let Some(state) = filter.state {
        query = query.filter(Column::State.eq(state.to_db()));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}

/// Changes to write; `None` leaves a column as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscriptionChanges {
    pub quantity: Option<i32>,
    pub state: Option<State>,
}

/// Writes `changes` if the row is still at `current.revision` (compare-and-swap).
pub async fn update(db: &impl ConnectionTrait, current: &Model, changes: SubscriptionChanges) -> Result<Model, Error> {
    let mut next = current.clone();
    next.revision += 1;
    next.update_time = now();
    let mut update = Entity::update_many()
        .col_expr(Column::Revision, Expr::value(next.revision))
        .col_expr(Column::UpdateTime, Expr::value(next.update_time));
    if let Some(quantity) = changes.quantity {
        update = update.col_expr(Column::Quantity, Expr::value(quantity));
        next.quantity = quantity;
    }
    if let Some(state) = changes.state {
        update = update.col_expr(Column::State, Expr::value(state.to_db()));
        next.state = state.to_db().to_owned();
    }
    let result =
        update.filter(Column::Id.eq(current.id)).filter(Column::Revision.eq(current.revision)).exec(db).await?;
    if result.rows_affected == 0 {
        return Err(Error::Conflict(format!(
            "subscriptions/{} changed concurrently; read it again and retry",
            current.id
        )));
    }
    Ok(next)
}

/// Whether an ACTIVE subscription is billed by `provider` through `reseller` (rule 8 for links).
pub async fn active_through_link(
    db: &impl ConnectionTrait,
    provider: PartnerId,
    reseller: PartnerId,
) -> Result<bool, Error> {
    let count = Entity::find()
        .filter(Column::BillingPartnerId.eq(provider.0))
        .filter(Column::PartnerOfRecordId.eq(reseller.0))
        .filter(Column::State.eq(State::Active.to_db()))
        .count(db)
        .await?;
    Ok(count > 0)
}

/// Whether `partner` is partner of record or billing partner of an ACTIVE subscription of
/// `customer` (rule 8 for customer relationships).
pub async fn active_transacted_by(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<bool, Error> {
    let count = Entity::find()
        .filter(Column::CustomerId.eq(customer.0))
        .filter(Column::State.eq(State::Active.to_db()))
        .filter(
            Condition::any().add(Column::PartnerOfRecordId.eq(partner.0)).add(Column::BillingPartnerId.eq(partner.0)),
        )
        .count(db)
        .await?;
    Ok(count > 0)
}
