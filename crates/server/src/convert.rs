//! Conversions between proto fields and domain values that every service needs: timestamps,
//! enum inputs (zero values are `*_UNSPECIFIED` and never valid input) and field masks.

use chrono::{DateTime, Utc};
use pc_domain::Error;
use prost_types::{FieldMask, Timestamp};

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: time.timestamp(), nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0) }
}

pub fn optional_timestamp(time: Option<DateTime<Utc>>) -> Option<Timestamp> {
    time.map(timestamp)
}

/// A required enum field: the unspecified zero value and unknown numbers are INVALID_ARGUMENT.
pub fn required_enum<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, Error> {
    if value == 0 {
        return Err(Error::invalid(field, "is required (the *_UNSPECIFIED value is not accepted)"));
    }
    E::try_from(value).map_err(|_| Error::invalid(field, format!("{value} is not a known value")))
}

/// An enum list filter: unspecified means "no filter"; unknown numbers are INVALID_ARGUMENT.
pub fn filter_enum<E: TryFrom<i32>>(field: &str, value: i32) -> Result<Option<E>, Error> {
    if value == 0 { Ok(None) } else { required_enum(field, value).map(Some) }
}

/// Longest field mask accepted, in paths; any real mask is far shorter.
const MAX_MASK_PATHS: usize = 32;

/// The paths of an update mask, checked against the fields `mutable` lists. `*` means all of
/// them; an empty mask means the ones `is_set` reports as present in the request (AIP-134).
pub fn update_paths<'a>(
    mask: Option<&FieldMask>,
    mutable: &[&'a str],
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<&'a str>, Error> {
    let paths = mask.map(|mask| mask.paths.as_slice()).unwrap_or_default();
    if paths.len() > MAX_MASK_PATHS {
        return Err(Error::invalid("update_mask", "has too many paths"));
    }
    if paths.is_empty() {
        let set: Vec<&str> = mutable.iter().copied().filter(|field| is_set(field)).collect();
        if set.is_empty() {
            return Err(Error::invalid("update_mask", "names no field to change"));
        }
        return Ok(set);
    }
    if paths.len() == 1 && paths[0] == "*" {
        return Ok(mutable.to_vec());
    }
    let mut chosen = Vec::new();
    for path in paths {
        let field = mutable.iter().find(|field| **field == path.as_str()).ok_or_else(|| {
            Error::invalid(
                "update_mask",
                format!("`{}` cannot be updated; updatable: {}", truncate(path), mutable.join(", ")),
            )
        })?;
        if !chosen.contains(field) {
            chosen.push(*field);
        }
    }
    Ok(chosen)
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> FieldMask {
        FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }
    }

    #[test]
    fn masks_pick_known_fields_and_refuse_others() {
        let mutable = ["display_name", "country_code"];
        assert_eq!(update_paths(Some(&mask(&["country_code"])), &mutable, |_| true).ok(), Some(vec!["country_code"]));
        assert_eq!(update_paths(Some(&mask(&["*"])), &mutable, |_| false).ok(), Some(mutable.to_vec()));
        assert_eq!(update_paths(None, &mutable, |f| f == "display_name").ok(), Some(vec!["display_name"]));
        assert!(update_paths(Some(&mask(&["state"])), &mutable, |_| true).is_err());
        assert!(update_paths(None, &mutable, |_| false).is_err());
    }

    #[test]
    fn enum_inputs_refuse_unspecified_and_unknown_values() {
        use pc_api::types::v1::Cloud;
        assert!(required_enum::<Cloud>("cloud", 0).is_err());
        assert!(required_enum::<Cloud>("cloud", 99).is_err());
        assert_eq!(required_enum::<Cloud>("cloud", 1).ok(), Some(Cloud::Global));
        assert_eq!(filter_enum::<Cloud>("cloud", 0).ok(), Some(None));
    }
}
