//! Checks of the rules of docs/domain.md over stored rows, shared by every service so each rule is written
//! once. Each failure is FAILED_PRECONDITION with the rule's reason.

use pc_domain::{Cloud, PartnerState, ProgramRole};
use pc_domain::{Error, PartnerId, Reason};

use crate::entity::partner;

/// Rule 3: a SUSPENDED partner starts nothing new.
pub fn partner_active(partner: &partner::Model) -> Result<(), Error> {
    if partner.state == PartnerState::Active {
        Ok(())
    } else {
        Err(Error::rule(
            Reason::PartnerSuspended,
            format!("{} is {} and starts nothing new", PartnerId(partner.id), partner.state),
        ))
    }
}

/// Rule 3: only partners enrolled as `role` may `what`.
pub fn partner_role(partner: &partner::Model, role: ProgramRole, what: &str) -> Result<(), Error> {
    if partner.program_role == role {
        Ok(())
    } else {
        Err(Error::rule(
            Reason::RoleNotAllowed,
            format!("only a {} may {what}, and {} is a {}", role, PartnerId(partner.id), partner.program_role),
        ))
    }
}

/// Rule 2: nothing joins resources of different clouds. `left` is the acting partner, whose
/// cloud the caller knows; the message does not say which cloud `right` is in (rule 9).
pub fn same_cloud(left: (&str, Cloud), right: (&str, Cloud)) -> Result<(), Error> {
    let ((left_name, left_cloud), (right_name, right_cloud)) = (left, right);
    if left_cloud == right_cloud {
        Ok(())
    } else {
        Err(Error::rule(
            Reason::CrossCloud,
            format!("{right_name} is not in the {left_cloud} cloud of {left_name}; nothing crosses clouds"),
        ))
    }
}
