//! The one idempotent-create path: every Create, Invite, Request and Register is a [`Create`]. It
//! takes the method name once, and with it builds the request's idempotency key (AIP-155,
//! `pc_store::idempotency`), runs the resource's insert in one transaction (replaying the
//! committed response for a retried `request_id`), and records the new row's change through
//! `pc_store::write::created`.

use pc_domain::{Error, Origin, Parties, Principal};
use pc_store::{Database, DatabaseTransaction, idempotency, idempotency::IdempotencyKey, write};
use prost::Message;

use crate::convert::{IdempotentRequest, idempotency_key};

/// One create call: its method, caller and idempotency key.
#[derive(Debug)]
pub struct Create {
    origin: Origin,
    key: Option<IdempotencyKey>,
}

impl Create {
    /// The create `method` (`CreatePartner`) of `request` by `caller`. Made before the request is
    /// taken apart: the key hashes the request as sent.
    pub fn new<R: IdempotentRequest>(caller: Principal, method: &'static str, request: &R) -> Result<Self, Error> {
        Ok(Self { key: idempotency_key(&caller, method, request)?, origin: Origin::new(method, caller) })
    }

    /// Runs `insert` once per key in one transaction: it locks and checks what the rules need,
    /// inserts the row and returns it with its parties; the row's change is recorded and the row
    /// shown through `to_proto`, in the same transaction.
    pub async fn run<Row: write::Row, T: Message + Default>(
        self,
        db: &Database,
        insert: impl AsyncFnOnce(&DatabaseTransaction) -> Result<(Row, Parties), Error>,
        to_proto: fn(Row) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let origin = &self.origin;
        idempotency::create_once(db, self.key.as_ref(), async |txn| {
            let (row, parties) = insert(txn).await?;
            write::created(txn, &row, origin, parties).await?;
            to_proto(row)
        })
        .await
    }
}
