//! Logging and tracing, set up once per process: `tracing` events filtered by `RUST_LOG` (default
//! `info`), written as text (coloured only on a terminal) or JSON lines to stderr; and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans exported over OTLP/HTTP (`opentelemetry-otlp`,
//! batched; the standard `OTEL_*` variables configure it): one span per RPC ([`rpc_span`]: service,
//! method, principal kind, gRPC code, the caller's W3C `traceparent` as its parent) with a child span
//! per database transaction.
//!
//! The log and the exporter each have their own filter (`RUST_LOG`, [`TRACES_FILTER_VAR`]): an
//! operator who quietens the log to `warn` still gets every call's trace. The RPC span is the only
//! span made per call, by the partner-center handlers alone: health checks and reflection make
//! none, so a probe every few seconds exports nothing.

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{global, trace::TraceContextExt, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::LogFormat;

/// Whether spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT was set at [`init`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The variable naming which spans are exported, in `RUST_LOG`'s syntax.
pub const TRACES_FILTER_VAR: &str = "OTEL_TRACES_FILTER";
/// Which spans are exported unless [`TRACES_FILTER_VAR`] says otherwise: the service's own (the
/// RPC and its transactions, both at info), none of its libraries' internals.
pub const DEFAULT_TRACES_FILTER: &str = "warn,pc_server=info,pc_store=info";

/// What must outlive serving: the span exporter, flushed by [`Telemetry::shutdown`].
#[derive(Debug, Default)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered; call before the process exits.
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("partner-center: flushing traces: {error}");
        }
    }
}

/// The OTLP span exporter, if `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector.
fn tracer_provider(service: &'static str) -> Option<SdkTracerProvider> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|e| !e.is_empty())?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("partner-center: traces to {endpoint} are off: {error}");
            return None;
        }
    };
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder().with_service_name(service).build();
    Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Installs the global subscriber for the binary `service` (its traces' `service.name`); a second
/// call (as in tests) leaves the first in place.
pub fn init(service: &'static str, format: LogFormat) -> Telemetry {
    let logged = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = tracer_provider(service);
    let spans = provider.as_ref().map(|provider| {
        let configured = std::env::var(TRACES_FILTER_VAR).ok().filter(|filter| !filter.is_empty());
        let exported = configured.as_deref().map_or_else(
            || Ok(EnvFilter::new(DEFAULT_TRACES_FILTER)),
            |filter| EnvFilter::try_new(filter).map_err(|error| format!("{TRACES_FILTER_VAR}={filter}: {error}")),
        );
        let exported = exported.unwrap_or_else(|error| {
            eprintln!("partner-center: {error}; exporting {DEFAULT_TRACES_FILTER} instead");
            EnvFilter::new(DEFAULT_TRACES_FILTER)
        });
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service)).with_filter(exported)
    });
    let registry = tracing_subscriber::registry().with(spans);
    let result = match format {
        // Colours only for a person at a terminal: a collector reading a pipe gets plain text.
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr)
                    .with_filter(logged),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr)
                    .with_filter(logged),
            )
            .try_init(),
    };
    match result {
        Ok(()) => {
            EXPORTING.store(provider.is_some(), Ordering::Relaxed);
            Telemetry { tracer_provider: provider }
        }
        // Already initialised: keep the existing subscriber.
        Err(_) => Telemetry::default(),
    }
}

/// Reads W3C trace context from gRPC metadata.
struct Metadata<'a>(&'a tonic::metadata::MetadataMap);

impl opentelemetry::propagation::Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                tonic::metadata::KeyRef::Ascii(key) => Some(key.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// `service/Method`, the span name OpenTelemetry's RPC conventions give a call, written only when
/// a layer records it (no string is built for a span that nobody exports).
struct SpanName(&'static str, &'static str);

impl std::fmt::Display for SpanName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

/// The span of one RPC, child of the caller's `traceparent` if it sent one: `service` is the full
/// service name, `method` the method as the proto spells it (`CreatePartner`). Its `trace_id`
/// field puts the trace id on every log line of the call; its principal is recorded by
/// [`crate::Authenticator::authorize`], its code by [`crate::metrics::observe`].
pub fn rpc_span<T>(service: &'static str, method: &'static str, request: &tonic::Request<T>) -> tracing::Span {
    if !EXPORTING.load(Ordering::Relaxed) {
        // Only the log reads it: the method and, once known, the caller; nothing more to format
        // on every call (and nothing at all below info).
        return tracing::info_span!(
            "rpc",
            rpc.service = service,
            rpc.method = method,
            principal = tracing::field::Empty,
            principal.kind = tracing::field::Empty,
        );
    }
    let span = tracing::info_span!(
        "rpc",
        otel.name = %SpanName(service, method),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        principal = tracing::field::Empty,
        principal.kind = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&Metadata(request.metadata())));
    if span.set_parent(parent).is_ok() {
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// `CreatePartner` for `create_partner`: a handler's name as the proto spells its method.
pub fn proto_method_name(handler: &str) -> String {
    handler
        .split('_')
        .map(|word| {
            let mut letters = word.chars();
            letters.next().map(|first| first.to_ascii_uppercase().to_string() + letters.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_names_become_the_protos_method_names() {
        assert_eq!(proto_method_name("create_partner"), "CreatePartner");
        assert_eq!(proto_method_name("list_customer_relationships"), "ListCustomerRelationships");
    }
}
