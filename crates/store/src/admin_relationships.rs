//! The `admin_relationships` table and its queries: the admin relationships themselves (rule
//! 12), the live ones of a partner and customer (which ending their customer relationship
//! terminates), and each party's list. A row's `expire_time` is when its current state lapses:
//! the approval deadline while APPROVAL_PENDING, the end of access while ACTIVE; its own
//! [`LifecycleRow::enter`] moves both on approval and on each auto-extension.

use chrono::{DateTime, Utc};
use pc_domain::{
    AdminRelationshipId, AdminRelationshipState, AdminRelationshipState as State, AdminRole, CustomerId, Error,
    PageRequest, PartnerId, Principal, ResourceKind, Stamp,
    admin_relationships::{Ask, EXTENSION},
};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use crate::{
    Database,
    db::{keyset_page, now, unique_violation_as},
    lifecycle::LifecycleRow,
    locks::{Lock, locked},
};

/// The table `admin_relationships`: roles a customer grants a partner for a bounded time.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_relationships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub partner_id: Uuid,
    pub customer_id: Uuid,
    pub display_name: String,
    /// The roles asked for, their names separated by spaces, in the catalogue's order.
    pub roles: String,
    pub duration_days: i32,
    pub auto_extend: bool,
    pub state: AdminRelationshipState,
    /// When the customer approved.
    pub accept_time: Option<DateTimeUtc>,
    /// ACTIVE: when access ends; after it: when it ended.
    pub end_time: Option<DateTimeUtc>,
    /// When the current state lapses (rule 15): the approval deadline, then the end of access.
    pub expire_time: DateTimeUtc,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::AdminRelationshipId, state, locked AdminRelationships);

impl LifecycleRow for Model {
    type State = State;
    type Table = Entity;
    type Key = PrimaryKey;
    type Id = AdminRelationshipId;
    const RESOURCE: &'static str = "AdminRelationship";

    fn state(&self) -> State {
        self.state
    }

    /// The deadline a move past it is refused at (rule 15): none for an ACTIVE one that
    /// auto-extends, which stays ACTIVE past its end time until the engine extends it.
    fn expire_time(&self) -> Option<DateTime<Utc>> {
        (!self.extends_at_end()).then_some(self.expire_time)
    }

    fn enter(&mut self, state: State, stamp: Stamp, time: DateTime<Utc>) {
        self.state = state;
        match stamp {
            // Access runs for its duration from the approval.
            Stamp::AcceptTime => {
                let end = time + chrono::TimeDelta::days(self.duration_days.into());
                (self.accept_time, self.end_time, self.expire_time) = (Some(time), Some(end), end);
            }
            // An end stamps when it happened, or keeps the end of access it came after (the
            // engine expires an ACTIVE one a while after its end time).
            Stamp::EndTime => self.end_time = Some(self.end_time.map_or(time, |end| end.min(time))),
            Stamp::Extension => {
                let end = self.end_time.unwrap_or(self.expire_time) + EXTENSION;
                (self.end_time, self.expire_time) = (Some(end), end);
            }
        }
    }
}

impl Model {
    /// Whether reaching its end extends it rather than ending it: ACTIVE and auto-extending.
    pub fn extends_at_end(&self) -> bool {
        self.auto_extend && self.state == State::Active
    }

    /// What the rules read of this row.
    pub fn facts(&self) -> pc_domain::admin_relationships::AdminRelationship {
        pc_domain::admin_relationships::AdminRelationship {
            id: AdminRelationshipId(self.id),
            partner: PartnerId(self.partner_id),
            customer: CustomerId(self.customer_id),
            roles: self.roles(),
            auto_extend: self.auto_extend,
            state: self.state,
            end_time: self.end_time.filter(|_| self.state == State::Active),
        }
    }

    /// The roles it grants, in the catalogue's order.
    pub fn roles(&self) -> Vec<AdminRole> {
        self.roles.split_whitespace().filter_map(AdminRole::from_name).collect()
    }
}

/// Inserts an APPROVAL_PENDING admin relationship that waits for the customer until
/// `expire_time`; a live one of the pair with the same display name is ALREADY_EXISTS.
pub async fn insert(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
    ask: Ask,
    expire_time: DateTime<Utc>,
) -> Result<Model, Error> {
    let time = now();
    let roles: Vec<&str> = ask.roles.iter().map(|role| role.as_str()).collect();
    let days = i32::try_from(ask.duration.num_days()).map_err(|_| Error::internal("a duration out of bounds"))?;
    let display_name = ask.display_name.into_inner();
    let row = ActiveModel {
        id: Set(AdminRelationshipId::generate().0),
        partner_id: Set(partner.0),
        customer_id: Set(customer.0),
        display_name: Set(display_name.clone()),
        roles: Set(roles.join(" ")),
        duration_days: Set(days),
        auto_extend: Set(ask.auto_extend),
        state: Set(State::ApprovalPending),
        accept_time: Set(None),
        end_time: Set(None),
        expire_time: Set(expire_time),
        revision: Set(1),
        create_time: Set(time),
        update_time: Set(time),
    };
    row.insert(db).await.map_err(|e| {
        unique_violation_as(e, || {
            Error::already_exists(
                "LIVE_ADMIN_RELATIONSHIP_NAMED",
                format!("{partner} already has a live admin relationship with {customer} named {display_name:?}"),
            )
        })
    })
}

/// The admin relationship rows of one partner and customer.
fn of_pair(partner: PartnerId, customer: CustomerId) -> Condition {
    Condition::all().add(Column::PartnerId.eq(partner.0)).add(Column::CustomerId.eq(customer.0))
}

/// The admin relationship rows of one partner and customer with `display_name` (unique among
/// the live ones).
pub fn named(partner: PartnerId, customer: CustomerId, display_name: &str) -> Condition {
    of_pair(partner, customer).add(Column::DisplayName.eq(display_name))
}

/// The admin relationship as last committed, if any: a read outside any transaction (a Get).
pub async fn read(db: &Database, id: AdminRelationshipId) -> Result<Option<Model>, Error> {
    Ok(db.find_by_id::<Entity>(id.0).await?)
}

/// The live (APPROVAL_PENDING or ACTIVE) admin relationships of `partner` with `customer`, locked
/// FOR UPDATE in ascending id (`LockOrder::AdminRelationships`): what ending their customer
/// relationship terminates.
pub async fn lock_live_of_pair(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<Vec<Model>, Error> {
    let query = Entity::find()
        .filter(of_pair(partner, customer))
        .filter(Column::State.is_in([State::ApprovalPending, State::Active]))
        .order_by_asc(Column::Id);
    Ok(locked(query, Lock::Update).all(db).await?)
}

/// The ACTIVE admin relationships of `partner` with `customer` (rule 13: what it may do for the
/// customer), without a lock: a read decides by them as they were at its start.
pub async fn active_of_pair(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<Vec<Model>, Error> {
    Ok(Entity::find().filter(of_pair(partner, customer)).filter(Column::State.eq(State::Active)).all(db).await?)
}

/// The admin relationship `id` a write acts under, locked FOR SHARE (`LockOrder::AdminRelationships`,
/// after every row the write changes): Terminate, the expiry engine and the end of its customer
/// relationship update it, so it stays as read until the write commits.
pub async fn lock_grant(db: &impl ConnectionTrait, id: AdminRelationshipId) -> Result<Option<Model>, Error> {
    crate::locks::find_locked::<Entity>(db, id.0, Lock::Share).await
}

impl Model {
    /// What rule 13 reads of an ACTIVE admin relationship.
    pub fn grant(&self) -> pc_domain::access::Grant {
        pc_domain::access::Grant {
            relationship: AdminRelationshipId(self.id),
            customer: CustomerId(self.customer_id),
            roles: self.roles(),
            until: self.end_time.unwrap_or(self.expire_time),
            auto_extend: self.auto_extend,
        }
    }
}

/// The customers whose resources of `kind` a role of `partner` reads at `now` (rule 13,
/// `pc_domain::access::roles_reading`, as SQL): those of its ACTIVE admin relationships, before
/// their end or auto-extending, holding a role that reads them. (No role's name contains
/// another's, so matching each name in the space-separated `roles` is exact.) What a List adds to
/// the partner's own view.
pub fn customers_read_by(partner: PartnerId, kind: ResourceKind, now: DateTime<Utc>) -> SelectStatement {
    let roles = pc_domain::access::roles_reading(kind);
    let any_role = roles.iter().fold(Condition::any(), |any, role| any.add(Column::Roles.like(format!("%{role}%"))));
    Query::select()
        .column(Column::CustomerId)
        .from(Entity)
        .and_where(Column::PartnerId.eq(partner.0))
        .and_where(Column::State.eq(State::Active))
        .cond_where(Condition::any().add(Column::AutoExtend.eq(true)).add(Column::EndTime.gt(now)))
        .cond_where(if roles.is_empty() { Condition::all().add(Expr::val(false)) } else { any_role })
        .to_owned()
}

/// [`customers_read_by`], read: what a List of a kind whose view is one indexed condition adds to
/// it. Read first rather than nested in the List's OR, which would keep PostgreSQL from using the
/// index of the partner's own condition (it would filter the whole table); for a partner without
/// roles the List is the query it was.
pub async fn customers_reading(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    kind: ResourceKind,
) -> Result<Vec<uuid::Uuid>, Error> {
    let rows = db.query_all(&customers_read_by(partner, kind, crate::db::now())).await?;
    rows.iter().map(|row| row.try_get_by_index::<uuid::Uuid>(0).map_err(Error::from)).collect()
}

/// ListAdminRelationships filters.
#[derive(Debug, Clone, Copy)]
pub struct AdminRelationshipFilter {
    /// Who lists: its view (rule 9, `pc_domain::admin_relationships`' `may_see`, as SQL: a partner
    /// its own, a customer those granted by it) bounds the list; the other fields narrow it.
    pub viewer: Principal,
    pub partner: Option<PartnerId>,
    pub customer: Option<CustomerId>,
    pub state: Option<State>,
}

/// One page of admin relationships in id (creation) order, plus one extra row.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: AdminRelationshipFilter,
    page: PageRequest,
) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    match filter.viewer {
        Principal::Operator => {}
        Principal::Partner(partner) => query = query.filter(Column::PartnerId.eq(partner.0)),
        Principal::Customer(customer) => query = query.filter(Column::CustomerId.eq(customer.0)),
    }
    if let Some(partner) = filter.partner {
        query = query.filter(Column::PartnerId.eq(partner.0));
    }
    if let Some(customer) = filter.customer {
        query = query.filter(Column::CustomerId.eq(customer.0));
    }
    if let Some(state) = filter.state {
        query = query.filter(Column::State.eq(state));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
