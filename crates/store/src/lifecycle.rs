//! The shared lifecycle of reseller links, customer relationships and support assignments: a
//! waiting state (INVITED, PENDING, REQUESTED) that the invited side accepts or declines, ACTIVE,
//! and ENDED by either side. One compare-and-swap UPDATE moves a row, so an accept racing an end
//! leaves exactly one winner; the loser sees ABORTED and, on retry, the transition rule.

use chrono::{DateTime, Utc};
use pc_domain::Error;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use crate::db::now;

/// A state change on a live resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Accept,
    Decline,
    End,
}

impl Transition {
    /// The stored state after the transition.
    pub fn target(self) -> &'static str {
        match self {
            Self::Accept => "ACTIVE",
            Self::Decline => "DECLINED",
            Self::End => "ENDED",
        }
    }

    /// Whether a resource in `state` may take this transition; `waiting` is the resource's
    /// not-yet-accepted state.
    pub fn allowed_from(self, state: &str, waiting: &str) -> bool {
        match self {
            Self::Accept | Self::Decline => state == waiting,
            Self::End => state == waiting || state == "ACTIVE",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::End => "end",
        }
    }
}

/// What the transition wrote: the new revision and the time it stamped.
#[derive(Debug, Clone, Copy)]
pub struct Transitioned {
    pub revision: i64,
    pub time: DateTime<Utc>,
}

/// Moves the row `id` of `table` from `revision` to `transition.target()`, stamping `accept_time`
/// or `end_time`. Zero rows updated means a concurrent change won: `Error::Conflict`.
pub async fn apply(
    db: &impl ConnectionTrait,
    table: &'static str,
    id: Uuid,
    revision: i64,
    transition: Transition,
) -> Result<Transitioned, Error> {
    let time = now();
    let mut update = Query::update();
    update
        .table(Alias::new(table))
        .value(Alias::new("state"), transition.target())
        .value(Alias::new("revision"), revision + 1)
        .value(Alias::new("update_time"), time);
    match transition {
        Transition::Accept => update.value(Alias::new("accept_time"), time),
        Transition::Decline | Transition::End => update.value(Alias::new("end_time"), time),
    };
    update.and_where(Expr::col(Alias::new("id")).eq(id)).and_where(Expr::col(Alias::new("revision")).eq(revision));
    let result = db.execute(&update).await?;
    if result.rows_affected() == 0 {
        return Err(Error::Conflict(format!("{table} {id} changed concurrently; read it again and retry")));
    }
    Ok(Transitioned { revision: revision + 1, time })
}

/// A row that follows the lifecycle, brought up to date after [`apply`] wrote it.
pub trait LifecycleRow {
    fn record(&mut self, transition: Transition, done: Transitioned);
}

macro_rules! lifecycle_row {
    ($($model:path),+) => {$(
        impl LifecycleRow for $model {
            fn record(&mut self, transition: Transition, done: Transitioned) {
                self.state = transition.target().to_owned();
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
    crate::entity::reseller_link::Model,
    crate::entity::customer_relationship::Model,
    crate::entity::support_assignment::Model
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_waiting_resources_are_accepted_or_declined_and_only_live_ones_end() {
        for transition in [Transition::Accept, Transition::Decline] {
            assert!(transition.allowed_from("INVITED", "INVITED"));
            for state in ["ACTIVE", "DECLINED", "ENDED"] {
                assert!(!transition.allowed_from(state, "INVITED"), "{transition:?} from {state}");
            }
        }
        assert!(Transition::End.allowed_from("PENDING", "PENDING"));
        assert!(Transition::End.allowed_from("ACTIVE", "PENDING"));
        assert!(!Transition::End.allowed_from("ENDED", "PENDING"));
        assert!(!Transition::End.allowed_from("DECLINED", "PENDING"));
    }
}
