//! The shared lifecycle of reseller links, customer relationships and support assignments, as the
//! store writes it: rule 5 itself is [`pc_domain::Lifecycle`]. One compare-and-swap UPDATE moves a
//! row, so an accept racing an end leaves exactly one winner; the loser sees ABORTED and, on
//! retry, the transition rule.

use chrono::{DateTime, Utc};
pub use pc_domain::Transition;
use pc_domain::{Error, Lifecycle};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use crate::db::now;

/// What the transition wrote: the new revision and the time it stamped.
#[derive(Debug, Clone, Copy)]
pub struct Transitioned {
    pub revision: i64,
    pub time: DateTime<Utc>,
}

/// A stored row that follows the lifecycle.
pub trait LifecycleRow {
    type State: Lifecycle;
    /// The table the row lives in.
    const TABLE: &'static str;

    fn id(&self) -> Uuid;
    fn revision(&self) -> i64;
    fn state(&self) -> Self::State;
    /// Brings the row up to date after [`apply`] wrote `done`.
    fn record(&mut self, transition: Transition, done: Transitioned);
}

/// Moves `row` from its revision to the state after `transition`, stamping `accept_time` or
/// `end_time`. Zero rows updated means a concurrent change won: `Error::Conflict`.
pub async fn apply<R: LifecycleRow>(
    db: &impl ConnectionTrait,
    row: &R,
    transition: Transition,
) -> Result<Transitioned, Error> {
    let (time, revision) = (now(), row.revision());
    let mut update = Query::update();
    update
        .table(Alias::new(R::TABLE))
        .value(Alias::new("state"), R::State::after(transition).name())
        .value(Alias::new("revision"), revision + 1)
        .value(Alias::new("update_time"), time);
    match transition {
        Transition::Accept => update.value(Alias::new("accept_time"), time),
        Transition::Decline | Transition::End => update.value(Alias::new("end_time"), time),
    };
    update
        .and_where(Expr::col(Alias::new("id")).eq(row.id()))
        .and_where(Expr::col(Alias::new("revision")).eq(revision));
    let result = db.execute(&update).await?;
    if result.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "{} {} changed concurrently; read it again and retry",
            R::TABLE,
            row.id()
        )));
    }
    Ok(Transitioned { revision: revision + 1, time })
}

macro_rules! lifecycle_row {
    ($($model:path => $state:ty, $table:literal);+ $(;)?) => {$(
        impl LifecycleRow for $model {
            type State = $state;
            const TABLE: &'static str = $table;

            fn id(&self) -> Uuid {
                self.id
            }

            fn revision(&self) -> i64 {
                self.revision
            }

            fn state(&self) -> $state {
                self.state
            }

            fn record(&mut self, transition: Transition, done: Transitioned) {
                self.state = <$state>::after(transition);
                self.revision = done.revision;
                self.update_time = done.time;
                match transition {
                    Transition::Accept => self.accept_time = Some(done.time),
                    Transition::Decline | Transition::End => self.end_time = Some(done.time),
                }
            }
        }
    )+};
}

lifecycle_row!(
    crate::entity::reseller_link::Model => pc_domain::LinkState, "reseller_links";
    crate::entity::customer_relationship::Model => pc_domain::RelationshipState, "customer_relationships";
    crate::entity::support_assignment::Model => pc_domain::AssignmentState, "support_assignments";
);
