//! The `support_assignments` table and its queries.

use pc_domain::{
    AssignmentState, AssignmentState as State, CustomerId, Error, PageRequest, PartnerId, Principal, ResourceKind,
    SubscriptionId, SupportAssignmentId,
};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{Query, SelectStatement},
};

use crate::{
    Database,
    db::{keyset_page, now, unique_violation_as},
    locks::{Lock, find_locked as find_locked_row},
    subscriptions,
};

/// The table `support_assignments`: partners hired to support subscriptions they did not sell.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub partner_id: Uuid,
    pub state: AssignmentState,
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

crate::write::stored_resource!(pc_domain::SupportAssignmentId, lifecycle pc_domain::AssignmentState, "SupportAssignment", locked SupportAssignments);

impl Model {
    /// What the rules read of this row.
    pub fn facts(&self) -> pc_domain::support_assignments::SupportAssignment {
        pc_domain::support_assignments::SupportAssignment {
            id: SupportAssignmentId(self.id),
            subscription: SubscriptionId(self.subscription_id),
            partner: PartnerId(self.partner_id),
            state: self.state,
        }
    }
}

/// The assignment rows of one subscription and partner (rule 4: one of them live at a time).
pub fn of_pair(subscription: SubscriptionId, partner: PartnerId) -> sea_orm::Condition {
    sea_orm::Condition::all().add(Column::SubscriptionId.eq(subscription.0)).add(Column::PartnerId.eq(partner.0))
}

/// Inserts a REQUESTED assignment; a live (REQUESTED or ACTIVE) one of the pair is ALREADY_EXISTS.
pub async fn insert(
    db: &impl ConnectionTrait,
    subscription: SubscriptionId,
    partner: PartnerId,
    expire_time: DateTimeUtc,
) -> Result<Model, Error> {
    let time = now();
    let row = ActiveModel {
        id: Set(SupportAssignmentId::generate().0),
        subscription_id: Set(subscription.0),
        partner_id: Set(partner.0),
        state: Set(State::Requested),
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
                "LIVE_ASSIGNMENT_EXISTS",
                format!("{partner} already has a REQUESTED or ACTIVE support assignment for {subscription}"),
            )
        })
    })
}

pub async fn find(db: &impl ConnectionTrait, id: SupportAssignmentId) -> Result<Option<Model>, Error> {
    Ok(Entity::find_by_id(id.0).one(db).await?)
}

/// The assignment `id`, locked as `lock` (see [`crate::locks`]).
pub async fn find_locked(
    db: &impl ConnectionTrait,
    id: SupportAssignmentId,
    lock: Lock,
) -> Result<Option<Model>, Error> {
    find_locked_row::<Entity>(db, id.0, lock).await
}

/// The assignment as last committed, if any: a read outside any transaction (a Get).
pub async fn read(db: &Database, id: SupportAssignmentId) -> Result<Option<Model>, Error> {
    Ok(db.find_by_id::<Entity>(id.0).await?)
}

/// The assignment as last committed, with its subscription, whose customer hires it (rule 9 reads
/// both): a read outside any transaction (a Get, CheckAccess).
pub async fn read_with_subscription(
    db: &Database,
    id: SupportAssignmentId,
) -> Result<Option<(Model, subscriptions::Model)>, Error> {
    let Some(assignment) = read(db, id).await? else { return Ok(None) };
    let subscription = subscriptions::read(db, SubscriptionId(assignment.subscription_id))
        .await?
        .ok_or_else(|| Error::internal(format!("{id} refers to a missing subscription")))?;
    Ok(Some((assignment, subscription)))
}

/// Whether `subscription` already has an ACTIVE support partner (rule 7).
pub async fn has_active(db: &impl ConnectionTrait, subscription: SubscriptionId) -> Result<bool, Error> {
    let count = Entity::find()
        .filter(Column::SubscriptionId.eq(subscription.0))
        .filter(Column::State.eq(State::Active))
        .count(db)
        .await?;
    Ok(count > 0)
}

/// `SELECT id FROM subscriptions WHERE customer_id = …`
fn subscriptions_of(customer: CustomerId) -> SelectStatement {
    Query::select()
        .column(subscriptions::Column::Id)
        .from(subscriptions::Entity)
        .and_where(subscriptions::Column::CustomerId.eq(customer.0))
        .to_owned()
}

fn live() -> [State; 2] {
    [State::Requested, State::Active]
}

/// The live assignments of `partner` for `customer`, read without a lock, in id order: what
/// ending a relationship ends with it (rule 8). Each is ended by a compare-and-swap, so one that
/// changed since is a retryable conflict.
pub async fn live_for(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<Vec<Model>, Error> {
    Ok(Entity::find()
        .filter(Column::PartnerId.eq(partner.0))
        .filter(Column::State.is_in(live()))
        .filter(Column::SubscriptionId.in_subquery(subscriptions_of(customer)))
        .order_by_asc(Column::Id)
        .all(db)
        .await?)
}

/// The live assignments of a subscription, read like [`live_for`]: what cancelling it ends.
pub async fn live_on(db: &impl ConnectionTrait, subscription: SubscriptionId) -> Result<Vec<Model>, Error> {
    Ok(Entity::find()
        .filter(Column::SubscriptionId.eq(subscription.0))
        .filter(Column::State.is_in(live()))
        .order_by_asc(Column::Id)
        .all(db)
        .await?)
}

/// ListSupportAssignments filters.
#[derive(Debug, Clone, Copy)]
pub struct AssignmentFilter {
    /// Who lists: its view (rule 9, as SQL: a partner its own, a customer those on its
    /// subscriptions) bounds the list; the other fields narrow it.
    pub viewer: Principal,
    pub subscription: Option<SubscriptionId>,
    pub partner: Option<PartnerId>,
    pub state: Option<State>,
}

/// One page of assignments in id (creation) order, plus one extra row.
pub async fn list(db: &impl ConnectionTrait, filter: AssignmentFilter, page: PageRequest) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    match filter.viewer {
        Principal::Operator => {}
        Principal::Partner(partner) => {
            // Its own, and those of the customers a role of it reads them of (rule 13).
            let customers =
                crate::admin_relationships::customers_reading(db, partner, ResourceKind::SupportAssignment).await?;
            let mut view = Condition::any().add(Column::PartnerId.eq(partner.0));
            if !customers.is_empty() {
                let of_customers = Query::select()
                    .column(subscriptions::Column::Id)
                    .from(subscriptions::Entity)
                    .and_where(subscriptions::Column::CustomerId.is_in(customers))
                    .to_owned();
                view = view.add(Column::SubscriptionId.in_subquery(of_customers));
            }
            query = query.filter(view);
        }
        Principal::Customer(customer) => {
            query = query.filter(Column::SubscriptionId.in_subquery(subscriptions_of(customer)));
        }
    }
    if let Some(subscription) = filter.subscription {
        query = query.filter(Column::SubscriptionId.eq(subscription.0));
    }
    if let Some(partner) = filter.partner {
        query = query.filter(Column::PartnerId.eq(partner.0));
    }
    if let Some(state) = filter.state {
        query = query.filter(Column::State.eq(state));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
