//! Who is calling: the vendor's operator, a partner or a customer, as named by the token's `sub`.

use std::fmt;

use crate::{CustomerId, Error, PartnerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The vendor's operator: enrols partners, registers external subscriptions, reads anything.
    Operator,
    Partner(PartnerId),
    Customer(CustomerId),
}

impl Principal {
    pub const OPERATOR: &'static str = "operator";

    /// Parses a token subject; anything else than the three forms is no credential at all.
    pub fn parse(subject: &str) -> Result<Self, Error> {
        if subject == Self::OPERATOR {
            return Ok(Self::Operator);
        }
        if subject.starts_with("partners/") {
            return PartnerId::parse("sub", subject).map(Self::Partner);
        }
        if subject.starts_with("customers/") {
            return CustomerId::parse("sub", subject).map(Self::Customer);
        }
        Err(Error::invalid("sub", "must be `operator`, `partners/{id}` or `customers/{id}`"))
    }

    /// `operator`, `partner` or `customer`: the caller's kind without its id (a low-cardinality
    /// label for traces and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Partner(_) => "partner",
            Self::Customer(_) => "customer",
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(self, Self::Operator)
    }

    /// Operators only; everything else is PERMISSION_DENIED with `what` in the message.
    pub fn require_operator(&self, what: &str) -> Result<(), Error> {
        if self.is_operator() { Ok(()) } else { Err(Error::denied(format!("only an operator may {what}"))) }
    }

    /// Operators, or the partner itself.
    pub fn require_partner_or_operator(&self, partner: PartnerId, what: &str) -> Result<(), Error> {
        match self {
            Self::Operator => Ok(()),
            Self::Partner(me) if *me == partner => Ok(()),
            _ => Err(Error::denied(format!("only {partner} or an operator may {what}"))),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operator => f.write_str(Self::OPERATOR),
            Self::Partner(id) => id.fmt(f),
            Self::Customer(id) => id.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        for principal in [
            Principal::Operator,
            Principal::Partner(PartnerId::generate()),
            Principal::Customer(CustomerId::generate()),
        ] {
            assert_eq!(Principal::parse(&principal.to_string()).ok(), Some(principal));
        }
    }

    #[test]
    fn unknown_subjects_are_refused() {
        for bad in ["", "Operator", "partners/x", "root", "resellerLinks/0190"] {
            assert!(Principal::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
