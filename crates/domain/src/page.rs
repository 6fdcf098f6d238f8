//! Keyset pagination for every List method: page sizes and opaque page tokens.
//!
//! A token carries the id of the last resource returned and an HMAC over that id and the query
//! (caller and filters) that produced it, keyed by a secret every replica shares ([`PageKey`],
//! derived from the token secret and handed to each service when the server is built). A token of another query, or one altered or forged,
//! is INVALID_ARGUMENT (AIP-158). And since the next page is always "the caller's own scope and
//! filters AND id > after", even a valid token cannot show a caller anything its query would not.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac, digest::KeyInit};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Error;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;
const MAX_TOKEN_LEN: usize = 256;

/// The page size a request asks for: `DEFAULT_PAGE_SIZE` for 0, at most `MAX_PAGE_SIZE`.
pub fn page_size(requested: i32) -> Result<u64, Error> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        n => Ok(u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE)),
    }
}

/// One validated page request: how many, and after which id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    pub after: Option<Uuid>,
}

/// Token layout: the bytes of the last position (a List's: the 16 bytes of the last id), then a
/// truncated HMAC-SHA256 tag.
const TAG_LEN: usize = 16;

/// The key page tokens are signed with: HMAC-SHA256, padded to the hash's block size (as HMAC
/// itself pads shorter keys). Derived from the token secret, so tokens survive restarts and work
/// on every replica.
#[derive(Clone)]
pub struct PageKey([u8; 64]);

impl PageKey {
    pub fn derive(secret: &[u8]) -> Self {
        let digest = Sha256::digest([&b"partnercenter page tokens v1:"[..], secret].concat());
        let mut key = [0; 64];
        key[..32].copy_from_slice(&digest);
        Self(key)
    }

    /// The MAC of a token for `after` in `query`, ready to finalize or verify.
    fn mac_over(&self, after: &[u8], query: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.0.into());
        mac.update(after);
        mac.update(query.as_bytes());
        mac
    }
}

impl std::fmt::Debug for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageKey(..)")
    }
}

impl PageRequest {
    /// `query` describes the caller and the filters, e.g. `partners/…|cloud=GLOBAL`.
    pub fn parse(page_size: i32, page_token: &str, query: &str, key: &PageKey) -> Result<Self, Error> {
        let size = self::page_size(page_size)?;
        let after = if page_token.is_empty() { None } else { Some(PageToken::decode(page_token, query, key)?) };
        Ok(Self { size, after })
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Trims a fetched batch to the page and makes the token of the next page, if any.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        id_of: impl Fn(&T) -> Uuid,
        query: &str,
        key: &PageKey,
    ) -> (Vec<T>, String) {
        let has_more = rows.len() as u64 > self.size;
        rows.truncate(usize::try_from(self.size).unwrap_or(usize::MAX));
        let next = match rows.last() {
            Some(last) if has_more => PageToken::encode(id_of(last), query, key),
            _ => String::new(),
        };
        (rows, next)
    }
}

/// The opaque `page_token` / `next_page_token` codec.
pub struct PageToken;

impl PageToken {
    pub fn encode(after: Uuid, query: &str, key: &PageKey) -> String {
        Self::encode_bytes(after.as_bytes(), query, key)
    }

    pub fn decode(token: &str, query: &str, key: &PageKey) -> Result<Uuid, Error> {
        let bytes = Self::decode_bytes(token, 16, query, key)?;
        Uuid::from_slice(&bytes).map_err(|_| Error::invalid("page_token", "is not a token this list returned"))
    }

    /// A token for a position of `after.len()` bytes (the change feed's: a transaction and an id).
    pub fn encode_bytes(after: &[u8], query: &str, key: &PageKey) -> String {
        let mut bytes = Vec::with_capacity(after.len() + TAG_LEN);
        bytes.extend_from_slice(after);
        bytes.extend_from_slice(&key.mac_over(after, query).finalize().into_bytes()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The `len` bytes of position a token of `query` carries.
    pub fn decode_bytes(token: &str, len: usize, query: &str, key: &PageKey) -> Result<Vec<u8>, Error> {
        let invalid = || Error::invalid("page_token", "is not a token this list returned");
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() != len + TAG_LEN {
            return Err(invalid());
        }
        let (after, received) = bytes.split_at(len);
        // verify_* compares in constant time.
        key.mac_over(after, query).verify_truncated_left(received).map_err(|_| {
            Error::invalid("page_token", "was altered or belongs to another query: keep the filters of the first page")
        })?;
        Ok(after.to_vec())
    }
}

/// One page of a List, the way every List pages: `query` (the caller and its filters) binds the
/// page token, so a token works only for the query that produced it; `fetch` reads the rows after
/// the token, one more than the page; `id_of` keys the next page; `shape` turns a row into what the
/// response carries. Returns the page and the next page token (empty on the last page).
pub async fn list<M, P>(
    page_size: i32,
    page_token: &str,
    query: &str,
    key: &PageKey,
    fetch: impl AsyncFnOnce(PageRequest) -> Result<Vec<M>, Error>,
    id_of: impl Fn(&M) -> Uuid,
    shape: impl FnMut(M) -> Result<P, Error>,
) -> Result<(Vec<P>, String), Error> {
    let page = PageRequest::parse(page_size, page_token, query, key)?;
    let (rows, next_page_token) = page.finish(fetch(page).await?, id_of, query, key);
    Ok((rows.into_iter().map(shape).collect::<Result<_, _>>()?, next_page_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PageKey {
        PageKey::derive(b"test secret")
    }

    #[test]
    fn tokens_round_trip_for_the_same_query() {
        let id = Uuid::now_v7();
        let token = PageToken::encode(id, "operator|cloud=GLOBAL", &key());
        let page = PageRequest::parse(10, &token, "operator|cloud=GLOBAL", &key()).ok();
        assert_eq!(page, Some(PageRequest { size: 10, after: Some(id) }));
    }

    #[test]
    fn altered_tokens_are_refused() {
        let token = PageToken::encode(Uuid::now_v7(), "q", &key());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
        bytes[3] ^= 1;
        assert!(PageToken::decode(&URL_SAFE_NO_PAD.encode(bytes), "q", &key()).is_err());
    }

    #[test]
    fn tokens_of_another_query_or_forged_ones_are_refused() {
        let token = PageToken::encode(Uuid::now_v7(), "operator|cloud=GLOBAL", &key());
        assert!(PageRequest::parse(10, &token, "operator|cloud=CHINA", &key()).is_err());
        for bad in ["x", "%%%", "eyJhIjoxfQ", &"A".repeat(400)] {
            assert!(PageRequest::parse(10, bad, "q", &key()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn page_sizes_default_clamp_and_reject_negatives() {
        assert_eq!(PageRequest::parse(0, "", "q", &key()).map(|p| p.size).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(PageRequest::parse(i32::MAX, "", "q", &key()).map(|p| p.size).ok(), Some(MAX_PAGE_SIZE));
        assert!(PageRequest::parse(-1, "", "q", &key()).is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let token = PageToken::encode(Uuid::now_v7(), "q", &PageKey::derive(b"another secret"));
        assert!(PageRequest::parse(10, &token, "q", &key()).is_err());
    }

    #[test]
    fn finishing_a_page_emits_a_token_only_when_more_rows_follow() {
        let page = PageRequest { size: 2, after: None };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (rows, next) = page.finish(ids.clone(), |id| *id, "q", &key());
        assert_eq!(rows, ids[..2]);
        assert_eq!(PageToken::decode(&next, "q", &key()).ok(), Some(ids[1]));
        let (rows, next) = page.finish(ids[..2].to_vec(), |id| *id, "q", &key());
        assert_eq!((rows.len(), next.as_str()), (2, ""));
    }
}
