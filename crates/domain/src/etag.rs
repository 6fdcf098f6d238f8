//! Etags: the stored revision counter of a resource, rendered as an opaque string. An update that
//! names an etag only succeeds against that revision (a compare-and-swap in the UPDATE itself).

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Etag(pub i64);

impl Etag {
    /// Parses the optional etag of a request: empty means "no precondition".
    pub fn parse_optional(field: &str, etag: &str) -> Result<Option<Self>, Error> {
        if etag.is_empty() {
            return Ok(None);
        }
        etag.strip_prefix("W/\"r")
            .and_then(|rest| rest.strip_suffix('"'))
            .and_then(|revision| revision.parse::<i64>().ok())
            .filter(|revision| *revision > 0)
            .map(|revision| Some(Self(revision)))
            .ok_or_else(|| Error::invalid(field, "is not an etag this service issued"))
    }

    pub fn render(revision: i64) -> String {
        format!("W/\"r{revision}\"")
    }

    /// ABORTED when the caller sent an etag and the stored revision is another one.
    pub fn check(expected: Option<Self>, revision: i64, name: impl std::fmt::Display) -> Result<(), Error> {
        match expected {
            Some(Self(expected)) if expected != revision => Err(Error::StaleEtag { name: name.to_string() }),
            _ => Ok(()),
        }
    }

    /// A compare-and-swap that lost a race reads as a stale etag to a caller that sent one.
    pub fn explain_conflict(error: Error, expected: Option<Self>, name: impl std::fmt::Display) -> Error {
        match (error, expected) {
            (Error::Conflict(_), Some(_)) => Error::StaleEtag { name: name.to_string() },
            (error, _) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_and_reject_garbage() {
        assert_eq!(Etag::parse_optional("etag", &Etag::render(7)).ok(), Some(Some(Etag(7))));
        assert_eq!(Etag::parse_optional("etag", "").ok(), Some(None));
        for bad in ["7", "W/\"r\"", "W/\"r-1\"", "\"r7\"", "W/\"rx\""] {
            assert!(Etag::parse_optional("etag", bad).is_err(), "{bad:?} accepted");
        }
    }
}
