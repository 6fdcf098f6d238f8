//! The tonic glue of a service, written once: [`grpc_service!`] declares a service's API struct
//! (the database, the page-token key and the authenticator), its `register` function, and the
//! tonic trait impl in which every RPC is one line naming its handler. Every generated method does
//! the same: authenticate the caller ([`crate::Authenticator::authorize`]: token, rate limit),
//! take the message, run the handler (retried when it writes: [`pc_store::retry`]), answer
//! through [`crate::respond`], and record the call ([`crate::metrics::observe`]).

/// Declares a service's API struct, its `register` function and its tonic trait impl.
///
/// ```text
/// grpc_service! {
///     /// doc of the API struct
///     ChannelApi serves ChannelService through ChannelServiceServer;
///     rpc create_subscription(CreateSubscriptionRequest) -> Subscription = retried subscriptions::create_subscription;
///     rpc get_subscription(GetSubscriptionRequest) -> Subscription = once subscriptions::get_subscription;
///     rpc list_subscriptions(ListSubscriptionsRequest) -> ListSubscriptionsResponse = list subscriptions::list_subscriptions;
///     stream watch_events(WatchEventsRequest) -> Event as WatchEventsStream = events::watch_events;
///     lifecycle SupportAssignments => support_assignments::to_proto, SupportAssignment {
///         accept_support_assignment(AcceptSupportAssignmentRequest) = Transition::Accept,
///         decline_support_assignment(DeclineSupportAssignmentRequest) = Transition::Decline,
///         end_support_assignment(EndSupportAssignmentRequest) = Transition::End,
///     }
/// }
/// ```
///
/// A `retried` handler writes and is `fn(&Database, Principal, Request)`, run again on a
/// transient conflict; a `once` handler reads, with the same arguments; a `list` handler also
/// takes the page-token key, `fn(&Database, &PageKey, Principal, Request)`. A `stream` handler
/// answers a server-streaming RPC, `fn(&Database, Principal, Request)` returning the stream of
/// its messages; the arm names tonic's associated stream type (`WatchEventsStream`), and the call's
/// span and metrics cover its start. A `lifecycle` names a
/// [`crate::lifecycle::Workflow`] and the RPCs that make its moves, each with the move it makes (of the
/// resource's own `pc_domain::Lifecycle`); their requests carry `name` and `etag`.
#[macro_export]
macro_rules! grpc_service {
    (
        $(#[$api_meta:meta])*
        $api:ident serves $service:ident through $server:ident;
        $(rpc $method:ident($request:ty) -> $response:ty = $kind:ident $handler:path;)*
        $(stream $stream_method:ident($stream_request:ty) -> $item:ty as $stream:ident = $stream_handler:path;)*
        $(
            lifecycle $workflow:ty => $to_proto:path, $resource:ty {
                $($lifecycle_method:ident($lifecycle_request:ty) = $transition:path),+ $(,)?
            }
        )*
    ) => {
        $(#[$api_meta])*
        #[derive(Debug, Clone)]
        pub struct $api {
            db: $crate::macro_support::Database,
            pages: $crate::macro_support::PageKey,
            auth: $crate::Authenticator,
        }

        /// Adds the service, behind the shared authenticator, to the routes a server will serve.
        pub fn register(services: &mut $crate::ServiceRoutes, shared: $crate::Shared) {
            use $crate::macro_support::tonic::server::NamedService;
            let api = $api { db: shared.db, pages: shared.pages, auth: shared.auth };
            services.routes.add_service($server::new(api));
            services.names.push(<$server<$api> as NamedService>::NAME);
            $(services.expiring.push($crate::expiry::Expiring::of::<$workflow>());)*
        }

        #[$crate::macro_support::tonic::async_trait]
        impl $service for $api {
            $(
                async fn $method(
                    &self,
                    request: $crate::macro_support::tonic::Request<$request>,
                ) -> Result<$crate::macro_support::tonic::Response<$response>, $crate::macro_support::tonic::Status> {
                    let service = <$server<$api> as $crate::macro_support::tonic::server::NamedService>::NAME;
                    let span = $crate::telemetry::rpc_span(service, $crate::grpc_service!(@proto_name $method), &request);
                    $crate::metrics::observe(service, stringify!($method), span, async {
                        let caller = self.auth.authorize(&request).await?;
                        let message = request.into_inner();
                        $crate::respond($crate::grpc_service!(@call $kind $handler, self, caller, message))
                    })
                    .await
                }
            )*
            $(
                type $stream = $crate::status::Streamed<$item>;

                async fn $stream_method(
                    &self,
                    request: $crate::macro_support::tonic::Request<$stream_request>,
                ) -> Result<$crate::macro_support::tonic::Response<Self::$stream>, $crate::macro_support::tonic::Status> {
                    let service = <$server<$api> as $crate::macro_support::tonic::server::NamedService>::NAME;
                    let span = $crate::telemetry::rpc_span(service, $crate::grpc_service!(@proto_name $stream_method), &request);
                    $crate::metrics::observe(service, stringify!($stream_method), span, async {
                        let caller = self.auth.authorize(&request).await?;
                        let message = request.into_inner();
                        $crate::respond($stream_handler(&self.db, caller, message).await.map($crate::status::streamed))
                    })
                    .await
                }
            )*
            $($(
                async fn $lifecycle_method(
                    &self,
                    request: $crate::macro_support::tonic::Request<$lifecycle_request>,
                ) -> Result<$crate::macro_support::tonic::Response<$resource>, $crate::macro_support::tonic::Status> {
                    let service = <$server<$api> as $crate::macro_support::tonic::server::NamedService>::NAME;
                    let span = $crate::telemetry::rpc_span(service, $crate::grpc_service!(@proto_name $lifecycle_method), &request);
                    $crate::metrics::observe(service, stringify!($lifecycle_method), span, async {
                        let caller = self.auth.authorize(&request).await?;
                        let message = request.into_inner();
                        let transition = $transition;
                        let done = $crate::lifecycle::run_retried::<$workflow, _>(
                            &self.db, caller, transition, &message.name, &message.etag, $to_proto,
                        );
                        $crate::respond(done.await)
                    })
                    .await
                }
            )+)*
        }
    };
    // The method as the proto spells it (`CreatePartner`), made once per method.
    (@proto_name $method:ident) => {{
        static NAME: ::std::sync::OnceLock<::std::string::String> = ::std::sync::OnceLock::new();
        NAME.get_or_init(|| $crate::telemetry::proto_method_name(stringify!($method))).as_str()
    }};
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
