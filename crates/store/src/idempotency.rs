//! Idempotent creates (AIP-155). A create that carries a `request_id` claims the key
//! (caller, request_id) first thing in its transaction and stores its response at the end, so:
//!
//! - a retry after success finds the key and gets the original response back, changing nothing;
//! - a retry racing the original blocks on the claimed key until the original commits, then
//!   fails the claim with a retryable conflict, and its retry replays the committed response;
//! - the same request_id with a different request is INVALID_ARGUMENT;
//! - a request_id is the UUID, not its spelling: `{...}`, `urn:uuid:`, upper case and no hyphens
//!   name the same key, and the nil UUID is refused;
//! - keys are kept for [`crate::Database::idempotency_window`] (7 days unless configured): a key
//!   older than that is forgotten at once by the request that finds it, and deleted in the
//!   background by [`forget_expired`].

use pc_domain::{Error, Principal};
use prost::Message;
use sea_orm::entity::prelude::*;
use std::time::Duration;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{db::now, errors::is_unique_violation};

/// The table `idempotency_keys`: request ids already seen, per caller, with the response they produced.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: Uuid,
    pub method: String,
    pub request_hash: Vec<u8>,
    /// The encoded response; empty only inside the transaction that claimed the key.
    pub response: Option<Vec<u8>>,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The idempotency key of one request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    principal: String,
    request_id: Uuid,
    method: &'static str,
    request_hash: Vec<u8>,
}

impl IdempotencyKey {
    /// The key of a request to `method` that carries `request_id`, or `None` when that is empty.
    /// `request` is the request as encoded without its `request_id`, so a retry that spells the
    /// UUID differently matches (the API edge encodes it: `pc_server::idempotency_key`).
    pub fn new(
        principal: &Principal,
        method: &'static str,
        request_id: &str,
        request: &[u8],
    ) -> Result<Option<Self>, Error> {
        if request_id.is_empty() {
            return Ok(None);
        }
        let request_id =
            Uuid::try_parse(request_id).map_err(|_| Error::invalid("request_id", "must be a UUID")).and_then(|id| {
                if id.is_nil() { Err(Error::invalid("request_id", "must not be the nil UUID")) } else { Ok(id) }
            })?;
        let mut hash = Sha256::new();
        hash.update(method.as_bytes());
        hash.update(request);
        Ok(Some(Self { principal: principal.to_string(), request_id, method, request_hash: hash.finalize().to_vec() }))
    }
}

/// Runs `create` in one transaction, once per key: a retry within the window gets what the first
/// run committed, and changes nothing. The key is claimed first (`LockOrder::IdempotencyKeys`, [`crate::locks`]) and
/// the response stored in the same transaction as the change; `create` returning an error rolls
/// everything back, the claim included. Without a key it simply runs in a transaction.
pub async fn create_once<R: Message + Default>(
    db: &crate::Database,
    key: Option<&IdempotencyKey>,
    create: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<R, Error>,
) -> Result<R, Error> {
    let txn = db.begin().await?;
    if let Some(previous) = replay(&txn, key, db.idempotency_window()).await? {
        return Ok(previous);
    }
    claim(&txn, key).await?;
    let created = create(&txn).await?;
    complete(&txn, key, &created).await?;
    txn.commit().await?;
    Ok(created)
}

/// The response of an earlier identical request within `window`, if there was one. A key older
/// than `window` is deleted here, so the request runs anew whether or not the sweep got to it.
pub async fn replay<R: Message + Default>(
    db: &impl ConnectionTrait,
    key: Option<&IdempotencyKey>,
    window: Duration,
) -> Result<Option<R>, Error> {
    let Some(key) = key else { return Ok(None) };
    let Some(seen) = Entity::find_by_id((key.principal.clone(), key.request_id)).one(db).await? else {
        return Ok(None);
    };
    if seen.create_time < cutoff(window) {
        Entity::delete_by_id((key.principal.clone(), key.request_id)).exec(db).await?;
        return Ok(None);
    }
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
    let row = ActiveModel {
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

/// The oldest creation time a key still counts at.
fn cutoff(window: Duration) -> chrono::DateTime<chrono::Utc> {
    now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)
}

/// Deletes every key older than the database's window and returns how many. One short DELETE
/// over the `create_time` index, touching only expired keys, so requests never wait for it.
pub async fn forget_expired(db: &crate::Database) -> Result<u64, Error> {
    let deleted =
        Entity::delete_many().filter(Column::CreateTime.lt(cutoff(db.idempotency_window()))).exec(db.primary()).await?;
    Ok(deleted.rows_affected)
}

/// Stores the response of the claimed request, in the transaction that produced it.
pub async fn complete<R: Message>(
    db: &impl ConnectionTrait,
    key: Option<&IdempotencyKey>,
    response: &R,
) -> Result<(), Error> {
    let Some(key) = key else { return Ok(()) };
    let row = ActiveModel {
        principal: Set(key.principal.clone()),
        request_id: Set(key.request_id),
        response: Set(Some(response.encode_to_vec())),
        ..Default::default()
    };
    row.update(db).await?;
    Ok(())
}
