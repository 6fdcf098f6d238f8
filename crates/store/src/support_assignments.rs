//! Queries on `support_assignments`.

use pc_api::channel::v1::support_assignment::State;
use pc_domain::{CustomerId, Error, PartnerId, SupportAssignmentId};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Query};

use crate::{
    entity::{
        subscription,
        support_assignment::{Column, Entity, Model},
    },
    enums::DbEnum,
    lifecycle::{self, Transition},
};

pub const TABLE: &str = "support_assignments";

/// The live (REQUESTED or ACTIVE) assignments of `partner` on subscriptions of `customer`.
pub async fn live_for(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<Vec<Model>, Error> {
    let subscriptions_of_customer = Query::select()
        .column(subscription::Column::Id)
        .from(subscription::Entity)
        .and_where(subscription::Column::CustomerId.eq(customer.0))
        .to_owned();
    Ok(Entity::find()
        .filter(Column::PartnerId.eq(partner.0))
        .filter(Column::State.is_in([State::Requested.to_db(), State::Active.to_db()]))
        .filter(Column::SubscriptionId.in_subquery(subscriptions_of_customer))
        .order_by_asc(Column::Id)
        .all(db)
        .await?)
}

/// Ends every live assignment of `partner` for `customer` (rule 8: ending a relationship ends
/// them in the same transaction) and returns the names of those it ended.
pub async fn end_all_for(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<Vec<SupportAssignmentId>, Error> {
    let mut ended = Vec::new();
    for assignment in live_for(db, partner, customer).await? {
        lifecycle::apply(db, TABLE, assignment.id, assignment.revision, Transition::End).await?;
        ended.push(SupportAssignmentId(assignment.id));
    }
    Ok(ended)
}
