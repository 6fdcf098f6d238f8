//! The audit log: every state change appends one event in the same transaction as the change.

use pc_domain::{Error, Principal};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::entity::audit_event;

/// Appends one event: `action` (the method) changed `resource`, as described by `change`.
pub async fn append(
    db: &impl ConnectionTrait,
    resource: &str,
    action: &str,
    principal: &Principal,
    change: serde_json::Value,
) -> Result<(), Error> {
    let event = audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        resource: Set(resource.to_owned()),
        action: Set(action.to_owned()),
        principal: Set(principal.to_string()),
        change: Set(change.to_string()),
        create_time: Set(crate::db::now()),
    };
    audit_event::Entity::insert(event).exec_without_returning(db).await?;
    Ok(())
}

/// The events of one resource, oldest first.
pub async fn events_of(db: &impl ConnectionTrait, resource: &str) -> Result<Vec<audit_event::Model>, Error> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Resource.eq(resource))
        .order_by_asc(audit_event::Column::Id)
        .all(db)
        .await?)
}

/// Appends the event of a state transition (`from` → `to`).
pub async fn transition(
    db: &impl ConnectionTrait,
    resource: &str,
    action: &str,
    principal: &Principal,
    from: &str,
    to: &str,
) -> Result<(), Error> {
    append(db, resource, action, principal, serde_json::json!({ "state": { "from": from, "to": to } })).await
}

/// Appends the events of support assignments that ended because `cause` changed (a relationship
/// ended or a subscription was cancelled), in the same transaction as that change.
pub async fn ended_because(
    db: &impl ConnectionTrait,
    assignments: &[pc_domain::SupportAssignmentId],
    principal: &Principal,
    cause: &str,
) -> Result<(), Error> {
    for assignment in assignments {
        let change =
            serde_json::json!({ "state": { "to": pc_domain::AssignmentState::Ended.as_str() }, "cause": cause });
        append(db, &assignment.name(), "EndSupportAssignment", principal, change).await?;
    }
    Ok(())
}
