//! Validated values of requests. Each type can only hold a well-formed value, so code past the
//! request boundary never re-checks them. Errors name the request field that carried the value.

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
use uuid::Uuid;

use crate::Error;

/// Longest display name accepted, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// Letters that render as nothing (Hangul fillers) and a blank that is a symbol (Braille pattern
/// blank), besides the combining grapheme joiner: invisible, yet not of an invisible category.
const INVISIBLE_GRAPHICS: [char; 6] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}', '\u{034F}'];

/// Whether `c` cannot appear in a name: a control or format character (zero-width space,
/// right-to-left override, ...), an unassigned or private-use code point, a line or paragraph
/// separator, or a character that renders as nothing.
fn is_invisible(c: char) -> bool {
    INVISIBLE_GRAPHICS.contains(&c)
        || matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::Unassigned
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Whether `c` shows something of its own: a letter, number, punctuation mark or symbol (not a
/// space or a mark that only decorates its neighbour).
fn is_visible(c: char) -> bool {
    !is_invisible(c)
        && matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter
                | GeneralCategoryGroup::Number
                | GeneralCategoryGroup::Punctuation
                | GeneralCategoryGroup::Symbol
        )
}

/// A human-readable name: 1 to 200 characters, no control, format or other invisible characters,
/// no surrounding blanks, and at least one character that shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        if value.trim().is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        if value.trim() != value {
            return Err(Error::invalid(field, "must not start or end with white space"));
        }
        if value.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(Error::invalid(field, format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters")));
        }
        if value.chars().any(is_invisible) {
            return Err(Error::invalid(field, "must not contain control, format or other invisible characters"));
        }
        if !value.chars().any(is_visible) {
            return Err(Error::invalid(field, "must contain a visible character"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The UUID of a directory tenant, in canonical lowercase form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(pub Uuid);

impl TenantId {
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        match Uuid::try_parse(value) {
            Ok(uuid) if !uuid.is_nil() && value.len() == 36 => Ok(Self(uuid)),
            Ok(_) => Err(Error::invalid(field, "must be a non-nil hyphenated UUID")),
            Err(_) => Err(Error::invalid(field, "must be a UUID")),
        }
    }
}

/// Every ISO 3166-1 alpha-2 code officially assigned.
const ISO_3166_ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO \
BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET \
FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS \
IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP \
MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO \
RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ \
UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// An ISO 3166-1 alpha-2 country code, upper case (`US`, `DE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        let bytes = value.as_bytes();
        if bytes.len() == 2
            && bytes.iter().all(u8::is_ascii_uppercase)
            && ISO_3166_ALPHA_2.split(' ').any(|code| code == value)
        {
            Ok(Self([bytes[0], bytes[1]]))
        } else {
            Err(Error::invalid(field, "must be an ISO 3166-1 alpha-2 country code in upper case, e.g. `US`"))
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from two ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// A DNS domain name of at least two labels, stored lower case (`contoso.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        let domain = value.strip_suffix('.').unwrap_or(value).to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |label: &&str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let tld_ok = labels.last().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
        if domain.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok {
            Ok(Self(domain))
        } else {
            Err(Error::invalid(field, "must be a DNS domain name such as `contoso.com`"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An offer identifier such as `office-365-e3`: 1 to 100 lowercase letters, digits, `-`, `.`
/// or `_`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferId(String);

impl OfferId {
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        let well_formed = value.len() <= 100
            && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_'));
        if well_formed {
            Ok(Self(value.to_owned()))
        } else {
            Err(Error::invalid(field, "must be 1-100 lowercase letters, digits, `-`, `.` or `_`, e.g. `office-365-e3`"))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Largest number of licences or units on one subscription.
pub const MAX_QUANTITY: i32 = 1_000_000;

/// A subscription quantity: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub fn parse(field: &str, value: i32) -> Result<Self, Error> {
        if (1..=MAX_QUANTITY).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Error::invalid(field, format!("must be between 1 and {MAX_QUANTITY}")))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_bounded_and_clean() {
        assert!(DisplayName::parse("f", "Contoso Ltd").is_ok());
        assert!(DisplayName::parse("f", &"é".repeat(200)).is_ok());
        for bad in ["", "   ", " padded", "tab\there", &"x".repeat(201)] {
            assert!(DisplayName::parse("f", bad).is_err(), "{bad:?} accepted");
        }
        // Names that look like another, or like nothing.
        for bad in [
            "Con\u{200B}toso",     // zero-width space (Cf)
            "Contoso \u{202E}dtl", // right-to-left override (Cf)
            "\u{FEFF}Contoso",     // byte-order mark (Cf)
            "Fabri\u{00AD}kam",    // soft hyphen (Cf)
            "\u{3164}",            // Hangul filler: a letter that renders as nothing
            "\u{0301}\u{0301}",    // combining marks with nothing to sit on
            "a\u{E000}b",          // private use
            "line\u{2028}break",   // line separator
        ] {
            assert!(DisplayName::parse("f", bad).is_err(), "{bad:?} accepted");
        }
        for good in
            ["Café Crème", "Zoë & Co.", "株式会社コントソ", "Ærø-Ølkompagni", "مؤسسة", "+1 Solutions", "Ünïcödé™"]
        {
            assert!(DisplayName::parse("f", good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn tenant_ids_must_be_real_uuids() {
        assert!(TenantId::parse("f", "5f3c2a9e-6b1d-4c1e-9a53-1f0e6f3b7c21").is_ok());
        for bad in ["", "nope", "00000000-0000-0000-0000-000000000000", "5f3c2a9e6b1d4c1e9a531f0e6f3b7c21"] {
            assert!(TenantId::parse("f", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn country_codes_must_be_assigned() {
        assert_eq!(CountryCode::parse("f", "DE").map(|c| c.as_str().to_owned()).ok().as_deref(), Some("DE"));
        for bad in ["", "de", "XX", "USA", "U"] {
            assert!(CountryCode::parse("f", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(
            DomainName::parse("f", "Contoso.COM.").map(DomainName::into_inner).ok().as_deref(),
            Some("contoso.com")
        );
        for bad in [
            "",
            "localhost",
            "-bad.com",
            "bad-.com",
            "a..b",
            "1.2.3.4",
            "sp ace.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(DomainName::parse("f", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn offer_ids_and_quantities_are_bounded() {
        assert!(OfferId::parse("f", "office-365-e3").is_ok());
        for bad in ["", "Office", "-x", "a b", &"a".repeat(101)] {
            assert!(OfferId::parse("f", bad).is_err(), "{bad:?} accepted");
        }
        assert!(Quantity::parse("f", 1).is_ok() && Quantity::parse("f", MAX_QUANTITY).is_ok());
        assert!(Quantity::parse("f", 0).is_err() && Quantity::parse("f", -5).is_err());
        assert!(Quantity::parse("f", MAX_QUANTITY + 1).is_err());
    }
}
