//! Partners, the program's directory (its role, its standing, its facts and rules): operators
//! enrol, suspend and reactivate partners (the caller check is `Principal::require_operator`); a
//! partner's state machine is ACTIVE <-> SUSPENDED.

use crate::{Cloud, Error, Parties, PartnerId, Reason, Role};

crate::states::stored_enum!(
    /// The one role a partner is enrolled in.
    ProgramRole {
        DirectBillPartner = "DIRECT_BILL_PARTNER",
        IndirectProvider = "INDIRECT_PROVIDER",
        IndirectReseller = "INDIRECT_RESELLER",
    }
);

crate::states::stored_enum!(
    /// A partner's standing; a SUSPENDED partner starts nothing new (rule 3).
    PartnerState { Active = "ACTIVE", Suspended = "SUSPENDED" }
);

/// An enrolled partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partner {
    pub id: PartnerId,
    pub cloud: Cloud,
    pub role: ProgramRole,
    pub state: PartnerState,
}

impl Partner {
    pub fn parties(&self) -> Parties {
        Parties::default().with(Role::Partner, Some(self.id))
    }
}

/// SuspendPartner and ReactivatePartner, the two moves of a partner's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    Suspend,
    Reactivate,
}

impl StateChange {
    /// The RPC (and audit event) name.
    pub fn method(self) -> &'static str {
        match self {
            Self::Suspend => "SuspendPartner",
            Self::Reactivate => "ReactivatePartner",
        }
    }

    /// What the caller does, for a PERMISSION_DENIED message.
    pub fn what(self) -> &'static str {
        match self {
            Self::Suspend => "suspend partners",
            Self::Reactivate => "reactivate partners",
        }
    }

    /// (the state it needs, the state it leaves)
    pub fn states(self) -> (PartnerState, PartnerState) {
        match self {
            Self::Suspend => (PartnerState::Active, PartnerState::Suspended),
            Self::Reactivate => (PartnerState::Suspended, PartnerState::Active),
        }
    }
}

/// The state `partner` is in after `change`, if its current state allows it.
pub fn change_state(change: StateChange, partner: &Partner) -> Result<PartnerState, Error> {
    let (from, to) = change.states();
    if partner.state == from {
        Ok(to)
    } else {
        Err(Error::rule(
            Reason::InvalidTransition,
            format!("{} needs a partner in state {from}, but {} is {}", change.method(), partner.id, partner.state),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgramRole;
    use crate::rules::test_support::*;

    #[test]
    fn only_active_partners_are_suspended_and_only_suspended_ones_reactivated() {
        let active = partner(ProgramRole::IndirectProvider);
        assert_eq!(change_state(StateChange::Suspend, &active).ok(), Some(PartnerState::Suspended));
        assert_eq!(reason(change_state(StateChange::Reactivate, &active)), "INVALID_TRANSITION");
        let suspended = suspended(active);
        assert_eq!(change_state(StateChange::Reactivate, &suspended).ok(), Some(PartnerState::Active));
        assert_eq!(reason(change_state(StateChange::Suspend, &suspended)), "INVALID_TRANSITION");
    }
}
