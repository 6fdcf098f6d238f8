//! The protobuf codec of every partner-center service and client: prost encoding, with two
//! changes at the boundary where hostile input arrives.
//!
//! - A message that does not parse (truncated, wrong wire types, invalid UTF-8 in a string) is
//!   the sender's fault: INVALID_ARGUMENT, not the INTERNAL that tonic's own codec reports.
//! - Request messages larger than [`MAX_REQUEST_BYTES`] are RESOURCE_EXHAUSTED before parsing;
//!   no legitimate request comes close. Responses (e.g. a page of 1000 partners) are not limited.

use std::marker::PhantomData;

use prost::{Message, Name};
use tonic::{
    Code, Status,
    codec::{BufferSettings, DecodeBuf, Decoder as TonicDecoder},
};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};

/// Largest request message accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The `google.rpc.ErrorInfo.domain` of the codec's refusals: `pc_domain::error::ERROR_DOMAIN`,
/// which this crate does not depend on (pc-server's tests hold the two equal).
pub const ERROR_DOMAIN: &str = "partnercenter";

/// A refusal of the message itself, with the ErrorInfo every error carries.
fn refused(code: Code, reason: &str, message: String) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, message, details)
}

#[derive(Debug, Clone)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(PhantomData)
    }
}

#[derive(Debug, Clone)]
pub struct Decoder<U>(PhantomData<U>);

impl<U: Message + Name + Default> TonicDecoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let size = bytes::Buf::remaining(buf);
        if size > MAX_REQUEST_BYTES && U::NAME.ends_with("Request") {
            let message = format!("{} is {size} bytes; requests are limited to {MAX_REQUEST_BYTES} bytes", U::NAME);
            return Err(refused(Code::ResourceExhausted, "MESSAGE_TOO_LARGE", message));
        }
        U::decode(buf).map(Some).map_err(|error| {
            refused(Code::InvalidArgument, "MESSAGE_MALFORMED", format!("malformed {} message: {error}", U::NAME))
        })
    }
}
