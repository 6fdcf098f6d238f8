#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! Talking to a test server: tokens, a client per service and principal, and reading answers
//! ([`Reply`]) and refusals ([`expect_code`], [`reason`], [`violated_field`]).

use std::{sync::atomic::Ordering, time::Duration};

use pc_api::channel::v1::channel_service_client::ChannelServiceClient;
use pc_api::event::v1::event_service_client::EventServiceClient;
use pc_api::partner::v1::partner_service_client::PartnerServiceClient;
use pc_api::relationship::v1::relationship_service_client::RelationshipServiceClient;
use pc_server::TokenIssuer;
use std::sync::Arc;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use crate::{TEST_SECRET, TestApp, identity::IdentityProvider};

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type AuthChannel = InterceptedService<Channel, Bearer>;

impl Bearer {
    /// A token for `subject` signed with the shared test secret, as a server the harness did not
    /// build itself (a [`ServerProcess`]) verifies it.
    pub fn signed_with_test_secret(subject: &str) -> Self {
        let token = TokenIssuer::new(TEST_SECRET).mint(subject, Duration::from_secs(600)).expect("mint a token");
        Self(Some(format!("Bearer {token}").parse().expect("ascii header")))
    }
}

/// What [`TestApp::bare_partners`] calls through.
pub type BareConnection =
    tower::util::BoxCloneService<http::Request<tonic::body::Body>, http::Response<hyper::body::Incoming>, hyper::Error>;

/// Who signs the test's tokens: the shared secret, or an identity provider's key.
pub(crate) enum Minter {
    Secret(TokenIssuer),
    Provider(Arc<IdentityProvider>),
}

/// Reads a call's answer in one line: `client.get_partner(request).await.reply()` is the message,
/// or the test fails with the status.
pub trait Reply<T> {
    fn reply(self) -> T;
}

impl<T> Reply<T> for Result<tonic::Response<T>, Status> {
    #[track_caller]
    fn reply(self) -> T {
        match self {
            Ok(response) => response.into_inner(),
            Err(status) => panic!("the call failed: {status:?}"),
        }
    }
}

impl TestApp {
    /// A bearer token for `subject` (`operator`, `partners/…`, `customers/…`).
    pub fn token(&self, subject: &str) -> String {
        match &self.issuer {
            Minter::Secret(issuer) => issuer.mint(subject, Duration::from_secs(600)).expect("mint a token"),
            Minter::Provider(provider) => provider.token_signed_by(&provider.signing, subject),
        }
    }

    pub(crate) fn bearer(&self, subject: Option<&str>) -> Bearer {
        Bearer(subject.map(|s| format!("Bearer {}", self.token(s)).parse().expect("ascii header")))
    }

    /// The channel the next client talks through: the in-process server's, or, while the app is
    /// spread over processes, each process's in turn.
    fn next_channel(&self) -> Channel {
        if self.processes.is_empty() {
            return self.channel.clone();
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        self.processes[turn % self.processes.len()].channel.clone()
    }

    /// PartnerService as `subject`; `None` sends no credential.
    pub fn partners_as(&self, subject: Option<&str>) -> PartnerServiceClient<AuthChannel> {
        PartnerServiceClient::with_interceptor(self.next_channel(), self.bearer(subject))
    }

    /// PartnerService with exactly this bearer token, as a client holding it would call.
    pub fn partners_with_token(&self, token: &str) -> PartnerServiceClient<AuthChannel> {
        let bearer = Bearer(Some(format!("Bearer {token}").parse().expect("ascii header")));
        PartnerServiceClient::with_interceptor(self.next_channel(), bearer)
    }

    /// PartnerService as the operator over a bare HTTP/2 connection: unlike tonic's `Channel`, it
    /// does not enforce a call's `grpc-timeout` itself, so what a test sees is the server's answer
    /// to it (as a client that leaves deadlines to the server would).
    pub async fn bare_partners(&self) -> PartnerServiceClient<BareConnection> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.expect("connect to the test server");
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .expect("an HTTP/2 connection");
        tokio::spawn(connection);
        let bearer: http::HeaderValue = format!("Bearer {}", self.token("operator")).parse().expect("ascii header");
        let send = tower::service_fn(move |mut request: http::Request<tonic::body::Body>| {
            let mut sender = sender.clone();
            request.headers_mut().insert("authorization", bearer.clone());
            async move { sender.send_request(request).await }
        });
        let origin = format!("http://{}", self.addr).parse().expect("an origin");
        PartnerServiceClient::with_origin(tower::util::BoxCloneService::new(send), origin)
    }

    pub fn partners(&self) -> PartnerServiceClient<AuthChannel> {
        self.partners_as(Some("operator"))
    }

    /// RelationshipService as `subject`; `None` sends no credential.
    pub fn relationships_as(&self, subject: Option<&str>) -> RelationshipServiceClient<AuthChannel> {
        RelationshipServiceClient::with_interceptor(self.next_channel(), self.bearer(subject))
    }

    pub fn relationships(&self) -> RelationshipServiceClient<AuthChannel> {
        self.relationships_as(Some("operator"))
    }

    /// ChannelService as `subject`; `None` sends no credential.
    pub fn channel_as(&self, subject: Option<&str>) -> ChannelServiceClient<AuthChannel> {
        ChannelServiceClient::with_interceptor(self.next_channel(), self.bearer(subject))
    }

    pub fn channel(&self) -> ChannelServiceClient<AuthChannel> {
        self.channel_as(Some("operator"))
    }

    /// EventService as `subject`; `None` sends no credential.
    pub fn events_as(&self, subject: Option<&str>) -> EventServiceClient<AuthChannel> {
        EventServiceClient::with_interceptor(self.next_channel(), self.bearer(subject))
    }
}

/// Asserts a call failed with `code` and a documented ErrorInfo ([`assert_error_info`]), and
/// returns the status for further checks.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: tonic::Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            assert_error_info(&status);
            status
        }
    }
}

/// The error reasons README's "Error reasons" table documents, each with its gRPC code's name.
pub fn documented_error_reasons() -> &'static [(String, String)] {
    static REASONS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    REASONS.get_or_init(|| {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&readme).expect("read README.md");
        let table = readme.split("### Error reasons").nth(1).expect("README has an Error reasons section");
        table
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).filter(|cell| !cell.is_empty());
                let reason = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                Some((reason.to_owned(), cells.next()?.to_owned()))
            })
            .collect()
    })
}

/// Asserts `status` carries a `google.rpc.ErrorInfo` in the partnercenter domain whose reason
/// README documents for its code (AIP-193: a client switches on the reason).
#[track_caller]
pub fn assert_error_info(status: &Status) {
    use tonic_types::StatusExt;
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.domain, pc_domain::error::ERROR_DOMAIN, "{status:?}");
    let code = format!("{:?}", status.code());
    let documented = documented_error_reasons()
        .iter()
        .any(|(reason, documented)| *reason == info.reason && documented.replace('_', "").eq_ignore_ascii_case(&code));
    assert!(documented, "reason {} with code {code} is not in README's Error reasons: {status:?}", info.reason);
}

/// The field named by an INVALID_ARGUMENT status's first `google.rpc.BadRequest` violation.
pub fn violated_field(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .and_then(|bad| bad.field_violations.into_iter().next())
        .map(|violation| violation.field)
        .unwrap_or_default()
}

/// The `google.rpc.ErrorInfo` reason of a status (a documented one: [`assert_error_info`]).
#[track_caller]
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    assert_error_info(status);
    status.get_details_error_info().map(|info| info.reason).unwrap_or_default()
}
