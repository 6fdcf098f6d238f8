//! The domain's enumerations: clouds, program roles, product families, sales channels, and the
//! states of every resource (docs/domain.md). They are stored as their names (`GLOBAL`,
//! `INDIRECT_RESELLER`, `ACTIVE`), so the schema reads as the domain does and a typo is a compile
//! error, not a row no query finds. Proto enums appear only at the API edge (`pc_server::convert`).
//!
//! The two-party resources (reseller links, customer relationships, support assignments) share one
//! lifecycle, [`Lifecycle`]: a waiting state the invited side accepts or declines, ACTIVE, and
//! ENDED by either side.

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

stored_enum!(
    /// Where a tenant lives; nothing links across clouds (rule 2).
    Cloud { Global = "GLOBAL", UsGovernment = "US_GOVERNMENT", China = "CHINA", Germany = "GERMANY" }
);

stored_enum!(
    /// The one role a partner is enrolled in.
    ProgramRole {
        DirectBillPartner = "DIRECT_BILL_PARTNER",
        IndirectProvider = "INDIRECT_PROVIDER",
        IndirectReseller = "INDIRECT_RESELLER",
    }
);

stored_enum!(
    /// A partner's standing; a SUSPENDED partner starts nothing new (rule 3).
    PartnerState { Active = "ACTIVE", Suspended = "SUSPENDED" }
);

stored_enum!(
    /// The two-tier link between a provider and a reseller.
    LinkState { Invited = "INVITED", Active = "ACTIVE", Declined = "DECLINED", Ended = "ENDED" }
);

stored_enum!(
    /// A partner's relationship with a customer.
    RelationshipState { Pending = "PENDING", Active = "ACTIVE", Declined = "DECLINED", Ended = "ENDED" }
);

stored_enum!(
    /// What kind of online service a subscription is.
    ProductFamily {
        Productivity = "PRODUCTIVITY",
        Azure = "AZURE",
        Dynamics = "DYNAMICS",
        Security = "SECURITY",
        Other = "OTHER",
    }
);

stored_enum!(
    /// How a subscription was bought: through the program (direct-bill or indirect) or elsewhere.
    SalesChannel {
        ProgramDirectBill = "PROGRAM_DIRECT_BILL",
        ProgramIndirect = "PROGRAM_INDIRECT",
        VendorDirect = "VENDOR_DIRECT",
        EnterpriseAgreement = "ENTERPRISE_AGREEMENT",
    }
);

stored_enum!(
    /// A subscription's state.
    SubscriptionState { Active = "ACTIVE", Suspended = "SUSPENDED", Cancelled = "CANCELLED" }
);

stored_enum!(
    /// A partner hired to support a subscription it did not sell.
    AssignmentState {
        Requested = "REQUESTED",
        Active = "ACTIVE",
        Declined = "DECLINED",
        Ended = "ENDED",
    }
);

/// A move of a two-party resource (rule 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Accept,
    Decline,
    End,
}

impl Transition {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::End => "end",
        }
    }
}

/// The states of a two-party resource: waiting (INVITED, PENDING, REQUESTED), ACTIVE, DECLINED,
/// ENDED. Rule 5 is written once, here, for all of them.
pub trait Lifecycle: Copy + PartialEq + std::fmt::Display + Sized {
    const WAITING: Self;
    const ACTIVE: Self;
    const DECLINED: Self;
    const ENDED: Self;

    /// The stored name.
    fn name(self) -> &'static str;

    /// The state after `transition`.
    fn after(transition: Transition) -> Self {
        match transition {
            Transition::Accept => Self::ACTIVE,
            Transition::Decline => Self::DECLINED,
            Transition::End => Self::ENDED,
        }
    }

    /// Rule 5: only a waiting resource is accepted or declined; only a live one (waiting or
    /// ACTIVE) ends.
    fn allows(self, transition: Transition) -> bool {
        match transition {
            Transition::Accept | Transition::Decline => self == Self::WAITING,
            Transition::End => self == Self::WAITING || self == Self::ACTIVE,
        }
    }

    /// Whether the resource is waiting or ACTIVE (what "one live ... per pair" counts).
    fn is_live(self) -> bool {
        self == Self::WAITING || self == Self::ACTIVE
    }
}

macro_rules! lifecycle {
    ($state:ident, $waiting:ident) => {
        impl Lifecycle for $state {
            const WAITING: Self = Self::$waiting;
            const ACTIVE: Self = Self::Active;
            const DECLINED: Self = Self::Declined;
            const ENDED: Self = Self::Ended;

            fn name(self) -> &'static str {
                self.as_str()
            }
        }
    };
}

lifecycle!(LinkState, Invited);
lifecycle!(RelationshipState, Pending);
lifecycle!(AssignmentState, Requested);

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(LinkState::Invited.allows(transition));
            for state in [LinkState::Active, LinkState::Declined, LinkState::Ended] {
                assert!(!state.allows(transition), "{transition:?} from {state}");
            }
        }
        assert!(RelationshipState::Pending.allows(Transition::End));
        assert!(RelationshipState::Active.allows(Transition::End));
        assert!(!RelationshipState::Ended.allows(Transition::End));
        assert!(!RelationshipState::Declined.allows(Transition::End));
        assert_eq!(AssignmentState::after(Transition::Accept), AssignmentState::Active);
    }
}
