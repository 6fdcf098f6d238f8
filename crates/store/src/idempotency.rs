//! Idempotent creates (AIP-155). A create that carries a `request_id` claims the key
//! (caller, request_id) first thing in its transaction and stores its response at the end, so:
//!
//! - a retry after success finds the key and gets the original response back, changing nothing;
//! - a retry racing the original blocks on the claimed key until the original commits, then
//!   fails the claim with a retryable conflict, and its retry replays the committed response;
//! - the same request_id with a different request is INVALID_ARGUMENT.

use pc_domain::{Error, Principal};
use prost::Message;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    db::{is_unique_violation, now},
    entity::idempotency_key::{self, Entity},
};

/// The idempotency key of one request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    principal: String,
    request_id: Uuid,
    method: &'static str,
    request_hash: Vec<u8>,
}

impl IdempotencyKey {
    /// The key of `request` to `method`, or `None` when it carries no `request_id`.
    pub fn of<M: Message>(
        principal: &Principal,
        method: &'static str,
        request_id: &str,
        request: &M,
    ) -> Result<Option<Self>, Error> {
        if request_id.is_empty() {
            return Ok(None);
        }
        let request_id = Uuid::try_parse(request_id)
            .ok()
            .filter(|id| !id.is_nil())
            .ok_or_else(|| Error::invalid("request_id", "must be a UUID"))?;
        let mut hash = Sha256::new();
        hash.update(method.as_bytes());
        hash.update(request.encode_to_vec());
        Ok(Some(Self { principal: principal.to_string(), request_id, method, request_hash: hash.finalize().to_vec() }))
    }
}

/// The response of an earlier identical request, if there was one.
pub async fn replay<R: Message + Default>(
    db: &impl ConnectionTrait,
    key: Option<&IdempotencyKey>,
) -> Result<Option<R>, Error> {
    let Some(key) = key else { return Ok(None) };
    let Some(seen) = Entity::find_by_id((key.principal.clone(), key.request_id)).one(db).await? else {
        return Ok(None);
    };
    if seen.method != key.method || seen.request_hash != key.request_hash {
        return Err(Error::invalid("request_id", "was already used for a different request"));
    }
    let bytes = seen.response.ok_or_else(|| Error::Conflict("the original request is still running".into()))?;
    R::decode(bytes.as_slice()).map(Some).map_err(|e| Error::internal(format!("stored response does not decode: {e}")))
}

/// Claims the key for this transaction. A concurrent claim of the same key is a retryable
/// conflict: on retry, [`replay`] returns what the winner committed.
pub async fn claim(db: &impl ConnectionTrait, key: Option<&IdempotencyKey>) -> Result<(), Error> {
    let Some(key) = key else { return Ok(()) };
    let row = idempotency_key::ActiveModel {
        principal: Set(key.principal.clone()),
        request_id: Set(key.request_id),
        method: Set(key.method.to_owned()),
        request_hash: Set(key.request_hash.clone()),
        response: Set(None),
        create_time: Set(now()),
    };
    match row.insert(db).await.map_err(Error::from) {
        Err(error) if is_unique_violation(&error) => {
            Err(Error::Conflict(format!("request_id {} is being used by a concurrent request", key.request_id)))
        }
        other => other.map(drop),
    }
}

/// Stores the response of the claimed request, in the transaction that produced it.
pub async fn complete<R: Message>(
    db: &impl ConnectionTrait,
    key: Option<&IdempotencyKey>,
    response: &R,
) -> Result<(), Error> {
    let Some(key) = key else { return Ok(()) };
    let row = idempotency_key::ActiveModel {
        principal: Set(key.principal.clone()),
        request_id: Set(key.request_id),
        response: Set(Some(response.encode_to_vec())),
        ..Default::default()
    };
    row.update(db).await?;
    Ok(())
}
