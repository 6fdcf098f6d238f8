//! What the domain's enumerations share: `stored_enum!`, which every resource's module uses to
//! declare its states and kinds (a partner's `ProgramRole`, a subscription's `SalesChannel`), and
//! the one enumeration no resource owns, [`Cloud`]. They are stored as their names (`GLOBAL`,
//! `INDIRECT_RESELLER`, `ACTIVE`), so the schema reads as the domain does and a typo is a compile
//! error, not a row no query finds. Proto enums appear only at the API edge (`pc_server::convert`).
//!
//! A resource with a lifecycle declares its states' table in its module ([`Lifecycle`], with
//! `lifecycle!`): which move leads from which state to which. The two-party resources (reseller
//! links, customer relationships, support assignments) share one table and one set of moves
//! ([`Transition`], `two_party_lifecycle!`): a waiting state the invited side accepts or declines,
//! ACTIVE, and ENDED by either side.

/// Declares a stored enumeration: `Name::Variant` is stored as the given text (SeaORM's
/// `DeriveActiveEnum`, with the `persistence` feature the store turns on).
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "persistence", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
        #[cfg_attr(feature = "persistence", sea_orm(rs_type = "String", db_type = "Text"))]
        pub enum $name {
            $($(#[$variant_meta])* #[cfg_attr(feature = "persistence", sea_orm(string_value = $text))] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored (and displayed) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The value stored as `text`, if any.
            pub fn from_name(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use stored_enum;

stored_enum!(
    /// Where a tenant lives; nothing links across clouds (rule 2).
    Cloud { Global = "GLOBAL", UsGovernment = "US_GOVERNMENT", China = "CHINA", Germany = "GERMANY" }
);

/// A resource's moves, declared per resource: each has a method verb and stamps a time. The
/// two-party resources share [`Transition`]; a resource that its creator cancels declares its own
/// enum (Accept, Decline, Cancel, Expire) and its own [`Lifecycle`] table. Every resource with moves
/// expires (rule 15): its waiting state has a deadline, and [`Move::EXPIRE`] is the expiry engine's
/// move, which no method makes.
pub trait Move: Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The move the expiry engine makes when a waiting resource passes its deadline.
    const EXPIRE: Self;
    /// The verb its method starts with (`Accept` in `AcceptResellerLink`).
    fn method_verb(self) -> &'static str;
    /// The verb in messages ("cannot accept ...").
    fn verb(self) -> &'static str;
    /// The time column the move stamps.
    fn stamps(self) -> Stamp;
}

/// The time a move stamps on its row, besides `update_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// `accept_time`: the resource became ACTIVE.
    AcceptTime,
    /// `end_time`: the resource left the live states for good.
    EndTime,
    /// `end_time` moved on by one extension (an auto-extending admin relationship, rule 12).
    Extension,
}

/// The moves of a two-party resource (rule 5): the invited side accepts or declines, either side
/// ends, and the expiry engine expires one nobody answered in time (rule 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Accept,
    Decline,
    End,
    Expire,
}

impl Move for Transition {
    const EXPIRE: Self = Self::Expire;

    fn method_verb(self) -> &'static str {
        match self {
            Self::Accept => "Accept",
            Self::Decline => "Decline",
            Self::End => "End",
            Self::Expire => "Expire",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::End => "end",
            Self::Expire => "expire",
        }
    }

    fn stamps(self) -> Stamp {
        match self {
            Self::Accept => Stamp::AcceptTime,
            Self::Decline | Self::End | Self::Expire => Stamp::EndTime,
        }
    }
}

/// The states of a resource with a lifecycle and the moves between them, declared per resource
/// with [`lifecycle!`]: rule 5 is the table, written once per resource.
pub trait Lifecycle: Copy + PartialEq + std::fmt::Display + Send + Sync + Sized + 'static {
    /// The moves this resource makes.
    type Transition: Move;

    /// The stored name.
    fn name(self) -> &'static str;

    /// The state `transition` leads to from this one, or `None` when it may not be made from here.
    fn after(self, transition: Self::Transition) -> Option<Self>;

    /// Whether the resource is still live (what "one live ... per pair" counts).
    fn is_live(self) -> bool;

    /// Whether it expired (rule 15): a move on it is refused as `EXPIRED`.
    fn is_expired(self) -> bool;

    /// Every state, in declaration order.
    fn all() -> &'static [Self];

    /// The states a deadline applies in: those the expiry engine's move leaves.
    fn waiting() -> impl Iterator<Item = Self> {
        Self::all().iter().copied().filter(|state| state.after(Self::Transition::EXPIRE).is_some())
    }
}

/// Declares a resource's [`Lifecycle`]: its moves, each from the states it may be made in to the
/// state it leads to, and its live states.
macro_rules! lifecycle {
    (
        $state:ident by $transition:ident {
            $($move:ident: $($from:ident)|+ => $to:ident,)+
        }
        live: $($live:ident)|+
        expired: $expired:ident
    ) => {
        impl $crate::states::Lifecycle for $state {
            type Transition = $transition;

            fn name(self) -> &'static str {
                self.as_str()
            }

            fn after(self, transition: $transition) -> Option<Self> {
                match (transition, self) {
                    $(($transition::$move, $(Self::$from)|+) => Some(Self::$to),)+
                    _ => None,
                }
            }

            fn is_live(self) -> bool {
                matches!(self, $(Self::$live)|+)
            }

            fn is_expired(self) -> bool {
                self == Self::$expired
            }

            fn all() -> &'static [Self] {
                Self::ALL
            }
        }
    };
}
pub(crate) use lifecycle;

/// The one table of the two-party resources: a waiting state the invited side accepts or
/// declines, ACTIVE, ENDED by either side from either live state, and EXPIRED when nobody answered
/// the waiting state before its deadline (rule 15).
macro_rules! two_party_lifecycle {
    ($state:ident, $waiting:ident) => {
        $crate::states::lifecycle!($state by Transition {
            Accept: $waiting => Active,
            Decline: $waiting => Declined,
            End: $waiting | Active => Ended,
            Expire: $waiting => Expired,
        } live: $waiting | Active
        expired: Expired);
    };
}
pub(crate) use two_party_lifecycle;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AssignmentState, LinkState, ProgramRole, RelationshipState};

    #[test]
    fn stored_names_round_trip() {
        for cloud in Cloud::ALL {
            assert_eq!(Cloud::from_name(cloud.as_str()), Some(*cloud));
        }
        assert_eq!(Cloud::UsGovernment.as_str(), "US_GOVERNMENT");
        assert_eq!(ProgramRole::from_name("INDIRECT_RESELLER"), Some(ProgramRole::IndirectReseller));
        assert_eq!(Cloud::from_name("MARS"), None);
    }

    #[test]
    fn only_waiting_resources_are_accepted_or_declined_and_only_live_ones_end() {
        for transition in [Transition::Accept, Transition::Decline] {
            assert!(LinkState::Invited.after(transition).is_some());
            for state in [LinkState::Active, LinkState::Declined, LinkState::Ended] {
                assert_eq!(state.after(transition), None, "{transition:?} from {state}");
            }
        }
        assert_eq!(RelationshipState::Pending.after(Transition::End), Some(RelationshipState::Ended));
        assert_eq!(RelationshipState::Active.after(Transition::End), Some(RelationshipState::Ended));
        assert_eq!(RelationshipState::Ended.after(Transition::End), None);
        assert_eq!(RelationshipState::Declined.after(Transition::End), None);
        assert_eq!(AssignmentState::Requested.after(Transition::Accept), Some(AssignmentState::Active));
        assert!(AssignmentState::Requested.is_live() && !AssignmentState::Declined.is_live());
    }

    #[test]
    fn only_the_waiting_state_expires() {
        assert_eq!(LinkState::waiting().collect::<Vec<_>>(), [LinkState::Invited]);
        assert_eq!(RelationshipState::waiting().collect::<Vec<_>>(), [RelationshipState::Pending]);
        assert_eq!(AssignmentState::waiting().collect::<Vec<_>>(), [AssignmentState::Requested]);
        assert_eq!(crate::TransferState::waiting().collect::<Vec<_>>(), [crate::TransferState::Pending]);
        assert_eq!(LinkState::Active.after(Transition::Expire), None);
        assert!(LinkState::Expired.is_expired() && !LinkState::Expired.is_live());
    }
}
