//! The one write path of every resource: [`created`] records a new row's change, [`update`] is
//! the one compare-and-swap (the etag, the revision the row was read at, the stamp, the change).
//! Partners, subscriptions and every lifecycle move go through [`update`]; every create goes
//! through [`created`] (after the resource's own insert, which knows its unique indexes). Both
//! append exactly one [`Change`] through [`crate::audit::record`], in the caller's transaction,
//! with the row as the change left it ([`snapshot`]; the change feed shows it through [`restore`]).
//!
//! The change is read off the rows: the fields that differ between the row before and after
//! (every column but the bookkeeping), the state before and after, in the domain's spelling
//! because the rows store it so. The caller adds what the rows do not say: who acted and why
//! ([`Origin`]) and who may see the change ([`Parties`], from the domain's facts).

use chrono::{DateTime, Utc};
use pc_domain::{Change, Error, Etag, Origin, Parties, ResourceKind, change::Delta};
use sea_orm::{
    ConnectionTrait, EntityTrait, IdenStatic, Iterable, ModelTrait, QueryFilter, Value,
    sea_query::{Alias, Expr, ExprTrait},
};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::{audit, db::now};

/// A stored resource: a row with an id, a revision (its etag) and an update time.
pub trait Row: ModelTrait + Clone + Send + Sync + 'static {
    const KIND: ResourceKind;
    fn id(&self) -> Uuid;
    /// The resource name (`partners/{id}`).
    fn name(&self) -> String;
    fn revision(&self) -> i64;
    /// The state's stored name, for a resource that has one.
    fn state_name(&self) -> Option<&'static str>;
    /// Sets the revision and the update time a write gives the row.
    fn stamp(&mut self, revision: i64, time: DateTime<Utc>);
}

/// Columns that are not fields of a change: bookkeeping every row has, the state (a change
/// carries it apart) and the times a move stamps.
const BOOKKEEPING: [&str; 7] = ["id", "revision", "create_time", "update_time", "state", "accept_time", "end_time"];

/// Records the change of `row`, just inserted by `origin`, in the caller's transaction.
pub async fn created<R: Row>(
    db: &impl ConnectionTrait,
    row: &R,
    origin: &Origin,
    parties: Parties,
) -> Result<(), Error> {
    let fields = fields::<R>().filter_map(|(name, column)| {
        let to = render(&row.get(column))?;
        Some((name.to_owned(), Delta { from: None, to: Some(to) }))
    });
    let state = row.state_name().map(|to| Delta { from: None, to: Some(to.to_owned()) });
    audit::record(db, &change(row, origin, parties, state, fields.collect()), snapshot(row)).await
}

/// The one compare-and-swap: writes `current` as `edit` changes it (given the write's time), if
/// the row is still at the revision it was read at, and records the change. `etag` is what the
/// caller sent: a lost race under an etag is ABORTED as a stale etag, without one a retryable
/// conflict (`Etag::explain_conflict`). The caller has checked the etag and the rules on
/// `current`, read under the lock protocol.
pub async fn update<R: Row>(
    db: &impl ConnectionTrait,
    current: &R,
    etag: Option<Etag>,
    origin: &Origin,
    parties: Parties,
    edit: impl FnOnce(&mut R, DateTime<Utc>),
) -> Result<R, Error> {
    let time = now();
    let mut next = current.clone();
    edit(&mut next, time);
    next.stamp(current.revision() + 1, time);

    let mut update = R::Entity::update_many();
    let mut fields = Vec::new();
    for column in <<R::Entity as EntityTrait>::Column as Iterable>::iter() {
        let (before, after) = (current.get(column), next.get(column));
        if before == after {
            continue;
        }
        if !BOOKKEEPING.contains(&column.as_str()) {
            fields.push((column.as_str().to_owned(), Delta { from: render(&before), to: render(&after) }));
        }
        update = update.col_expr(column, Expr::value(after));
    }
    let result = update
        .filter(Expr::col(Alias::new("id")).eq(current.id()))
        .filter(Expr::col(Alias::new("revision")).eq(current.revision()))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        let name = current.name();
        let lost = Error::Conflict(format!("{name} changed concurrently; read it again and retry"));
        return Err(Etag::explain_conflict(lost, etag, name));
    }
    let state = match (current.state_name(), next.state_name()) {
        (Some(from), Some(to)) if from != to => Some(Delta { from: Some(from.to_owned()), to: Some(to.to_owned()) }),
        _ => None,
    };
    audit::record(db, &change(&next, origin, parties, state, fields), snapshot(&next)).await?;
    Ok(next)
}

fn change<R: Row>(
    row: &R,
    origin: &Origin,
    parties: Parties,
    state: Option<Delta>,
    fields: Vec<(String, Delta)>,
) -> Change {
    Change {
        method: origin.method.clone(),
        kind: R::KIND,
        resource: row.name(),
        state,
        fields,
        principal: origin.principal.to_string(),
        parties,
        cause: origin.cause.clone(),
        delegation: origin.delegation.clone(),
    }
}

/// The columns of `R` that a change lists as fields, with their names.
fn fields<R: Row>() -> impl Iterator<Item = (&'static str, <R::Entity as EntityTrait>::Column)> {
    <<R::Entity as EntityTrait>::Column as Iterable>::iter()
        .map(|column| (column.as_str(), column))
        .filter(|(name, _)| !BOOKKEEPING.contains(name))
}

/// The row as one JSON object of its columns, as the audit log keeps the resource a change left
/// (read back by [`restore`]): text, ids and times as strings, numbers as numbers, NULL as null.
pub fn snapshot<R: Row>(row: &R) -> String {
    let columns = <<R::Entity as EntityTrait>::Column as Iterable>::iter().map(|column| {
        let value = match row.get(column) {
            Value::Int(number) => number.map_or(Json::Null, Json::from),
            Value::BigInt(number) => number.map_or(Json::Null, Json::from),
            Value::Bool(flag) => flag.map_or(Json::Null, Json::from),
            other => render(&other).map_or(Json::Null, Json::from),
        };
        (column.as_str().to_owned(), value)
    });
    Json::Object(columns.collect()).to_string()
}

/// The row a [`snapshot`] was taken of, each column read back as its type in `R`'s table.
pub fn restore<R: Row>(snapshot: &str) -> Result<R, Error>
where
    <R::Entity as EntityTrait>::ActiveModel: sea_orm::TryIntoModel<R>,
{
    use sea_orm::{ActiveModelTrait, ColumnTrait, ColumnType, TryIntoModel};
    let broken = |what: String| Error::internal(format!("a {} snapshot {what}", R::KIND.type_name()));
    let object: serde_json::Map<String, Json> =
        serde_json::from_str(snapshot).map_err(|e| broken(format!("does not parse: {e}")))?;
    let mut row = <<R::Entity as EntityTrait>::ActiveModel as ActiveModelTrait>::default_values();
    for column in <<R::Entity as EntityTrait>::Column as Iterable>::iter() {
        let json = object.get(column.as_str()).unwrap_or(&Json::Null);
        let text = json.as_str().map(str::to_owned);
        let value = match column.def().get_column_type() {
            ColumnType::Integer => Value::Int(json.as_i64().and_then(|n| i32::try_from(n).ok())),
            ColumnType::BigInteger => Value::BigInt(json.as_i64()),
            ColumnType::Boolean => Value::Bool(json.as_bool()),
            ColumnType::Uuid => Value::Uuid(text.map(|t| t.parse()).transpose().map_err(|e| broken(format!("{e}")))?),
            ColumnType::TimestampWithTimeZone | ColumnType::Timestamp => {
                let time = text.map(|t| DateTime::parse_from_rfc3339(&t)).transpose();
                Value::ChronoDateTimeUtc(time.map_err(|e| broken(format!("{e}")))?.map(|t| t.with_timezone(&Utc)))
            }
            _ => Value::String(text),
        };
        row.try_set(column, value).map_err(|e| broken(format!("has a bad {}: {e}", column.as_str())))?;
    }
    row.try_into_model().map_err(|e| broken(format!("is incomplete: {e}")))
}

/// A stored value as a change shows it: text as it is, numbers, ids and times printed; `None`
/// for NULL.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => text.clone(),
        Value::Int(number) => number.map(|n| n.to_string()),
        Value::BigInt(number) => number.map(|n| n.to_string()),
        Value::Bool(flag) => flag.map(|b| b.to_string()),
        Value::Uuid(id) => id.map(|id| id.hyphenated().to_string()),
        Value::ChronoDateTimeUtc(time) => time.map(|t| t.to_rfc3339()),
        other => Some(format!("{other:?}")),
    }
}

/// Declares, in an entity's module, what the generic code knows of its rows: [`Row`] (its typed
/// id and kind, whether it has a state), its place in the lock order
/// ([`crate::locks::Ordered`]) if it is locked, and, for a resource with moves,
/// [`crate::lifecycle::LifecycleRow`] (its `pc_domain::Lifecycle` state and its name in methods).
/// One line per entity:
///
/// ```text
/// stored_resource!(CustomerId);
/// stored_resource!(PartnerId, state, locked Partners);
/// stored_resource!(ResellerLinkId, lifecycle LinkState "ResellerLink", locked ResellerLinks);
/// ```
macro_rules! stored_resource {
    ($id:ty) => {
        $crate::write::stored_resource!(@row $id, |_| None);
    };
    ($id:ty, state, locked $order:ident) => {
        $crate::write::stored_resource!(@row $id, |row| Some(row.state.as_str()));
        $crate::write::stored_resource!(@locked $order);
    };
    ($id:ty, lifecycle $state:ty, $resource:literal, locked $order:ident) => {
        $crate::write::stored_resource!($id, state, locked $order);

        impl $crate::lifecycle::LifecycleRow for Model {
            type State = $state;
            type Table = Entity;
            type Key = PrimaryKey;
            type Id = $id;
            const RESOURCE: &'static str = $resource;

            fn state(&self) -> $state {
                self.state
            }

            fn expire_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
                $crate::lifecycle::Deadline::deadline(&self.expire_time)
            }

            fn enter(&mut self, state: $state, stamp: pc_domain::Stamp, time: chrono::DateTime<chrono::Utc>) {
                self.state = state;
                match stamp {
                    pc_domain::Stamp::AcceptTime => self.accept_time = Some(time),
                    pc_domain::Stamp::EndTime => self.end_time = Some(time),
                    // Only admin relationships extend, and they write their own `enter`.
                    pc_domain::Stamp::Extension => {}
                }
            }
        }
    };
    (@locked $order:ident) => {
        impl $crate::locks::Ordered for Entity {
            const ORDER: $crate::locks::LockOrder = $crate::locks::LockOrder::$order;
        }
    };
    (@row $id:ty, $state:expr) => {
        impl $crate::write::Row for Model {
            const KIND: pc_domain::ResourceKind = <$id as pc_domain::ResourceId>::KIND;

            fn id(&self) -> uuid::Uuid {
                self.id
            }

            fn name(&self) -> String {
                <$id as pc_domain::ResourceId>::from_uuid(self.id).to_string()
            }

            fn revision(&self) -> i64 {
                self.revision
            }

            fn state_name(&self) -> Option<&'static str> {
                let state: fn(&Self) -> Option<&'static str> = $state;
                state(self)
            }

            fn stamp(&mut self, revision: i64, time: chrono::DateTime<chrono::Utc>) {
                self.revision = revision;
                self.update_time = time;
            }
        }
    };
}

pub(crate) use stored_resource;
