//! The tonic glue of a service, written once: [`grpc_service!`] declares a service's API struct
//! (the database and the page-token key), its `register` function, and the tonic trait impl in
//! which every RPC is one line naming its handler. Every generated method does the same: take the
//! caller's principal (set by the authenticator), take the message, run the handler (retried when
//! it writes: [`pc_store::retry`]), and answer through [`crate::respond`].

use pc_domain::{Error, Principal};
use pc_store::{
    Database,
    lifecycle::{self, Transition, Workflow},
    retry::with_retries,
};

/// Accept, Decline or End of a two-party resource: the one lifecycle ([`lifecycle::run`]) of
/// workflow `W`, retried, its row shown through `to_proto`.
pub async fn run_lifecycle<W: Workflow, T>(
    db: &Database,
    caller: Principal,
    transition: Transition,
    name: &str,
    etag: &str,
    to_proto: fn(W::Row) -> Result<T, Error>,
) -> Result<T, Error> {
    to_proto(with_retries(|| lifecycle::run::<W>(db, caller, transition, name, etag)).await?)
}

/// Declares a service's API struct, its `register` function and its tonic trait impl.
///
/// ```text
/// grpc_service! {
///     /// doc of the API struct
///     ChannelApi serves ChannelService through ChannelServiceServer;
///     rpc create_subscription(CreateSubscriptionRequest) -> Subscription = retried subscriptions::create_subscription;
///     rpc get_subscription(GetSubscriptionRequest) -> Subscription = once subscriptions::get_subscription;
///     rpc list_subscriptions(ListSubscriptionsRequest) -> ListSubscriptionsResponse = list subscriptions::list_subscriptions;
///     lifecycle SupportAssignments => support_assignments::to_proto, SupportAssignment {
///         Accept accept_support_assignment(AcceptSupportAssignmentRequest),
///         Decline decline_support_assignment(DeclineSupportAssignmentRequest),
///         End end_support_assignment(EndSupportAssignmentRequest),
///     }
/// }
/// ```
///
/// A `retried` handler writes and is `fn(&Database, Principal, Request)`, run again on a
/// transient conflict; a `once` handler reads, with the same arguments; a `list` handler also
/// takes the page-token key, `fn(&Database, &PageKey, Principal, Request)`. A `lifecycle` names a
/// [`Workflow`] and the RPCs that make its transitions (their requests carry `name` and `etag`).
#[macro_export]
macro_rules! grpc_service {
    (
        $(#[$api_meta:meta])*
        $api:ident serves $service:ident through $server:ident;
        $(rpc $method:ident($request:ty) -> $response:ty = $kind:ident $handler:path;)*
        $(
            lifecycle $workflow:ty => $to_proto:path, $resource:ty {
                $($transition:ident $lifecycle_method:ident($lifecycle_request:ty)),+ $(,)?
            }
        )*
    ) => {
        $(#[$api_meta])*
        #[derive(Debug, Clone)]
        pub struct $api {
            db: $crate::macro_support::Database,
            pages: $crate::macro_support::PageKey,
        }

        /// Adds the service, behind the shared authenticator, to the routes a server will serve.
        pub fn register(services: &mut $crate::ServiceRoutes, shared: $crate::Shared) {
            use $crate::macro_support::tonic::server::NamedService;
            let api = $api { db: shared.db, pages: shared.pages };
            services.routes.add_service($server::with_interceptor(api, shared.auth));
            services.names.push(<$server<$api> as NamedService>::NAME);
        }

        #[$crate::macro_support::tonic::async_trait]
        impl $service for $api {
            $(
                async fn $method(
                    &self,
                    request: $crate::macro_support::tonic::Request<$request>,
                ) -> Result<$crate::macro_support::tonic::Response<$response>, $crate::macro_support::tonic::Status> {
                    let caller = $crate::principal_of(&request)?;
                    let message = request.into_inner();
                    $crate::respond($crate::grpc_service!(@call $kind $handler, self, caller, message))
                }
            )*
            $($(
                async fn $lifecycle_method(
                    &self,
                    request: $crate::macro_support::tonic::Request<$lifecycle_request>,
                ) -> Result<$crate::macro_support::tonic::Response<$resource>, $crate::macro_support::tonic::Status> {
                    let caller = $crate::principal_of(&request)?;
                    let message = request.into_inner();
                    let transition = $crate::macro_support::Transition::$transition;
                    let done = $crate::grpc_service::run_lifecycle::<$workflow, _>(
                        &self.db, caller, transition, &message.name, &message.etag, $to_proto,
                    );
                    $crate::respond(done.await)
                }
            )+)*
        }
    };
    (@call retried $handler:path, $api:ident, $caller:ident, $message:ident) => {
        $crate::macro_support::with_retries(|| $handler(&$api.db, $caller, $message.clone())).await
    };
    (@call once $handler:path, $api:ident, $caller:ident, $message:ident) => {
        $handler(&$api.db, $caller, $message).await
    };
    (@call list $handler:path, $api:ident, $caller:ident, $message:ident) => {
        $handler(&$api.db, &$api.pages, $caller, $message).await
    };
}
