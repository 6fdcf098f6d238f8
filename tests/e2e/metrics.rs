//! Prometheus metrics (METRICS_ADDR): a scrape of a running server shows the calls it answered,
//! by method and code, their latency, the calls in flight, the pools and the rate limit, and the
//! text passes `promtool check metrics` (the Prometheus package's linter; CI installs it).

use pc_api::partner::v1::{CreatePartnerRequest, GetPartnerRequest, ListPartnersRequest, ProgramRole};
use pc_api::types::v1::Cloud;
use pc_tests::{AppOptions, metric_sample as sample, new_partner, scrape_metrics as scrape, spawn_app_with};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_scrape_shows_each_call_by_method_and_code_and_passes_promtool() {
    let app = spawn_app_with(AppOptions { metrics: true, rate_limit: Some((1, 2)), ..Default::default() }).await;
    let addr = app.metrics_addr.expect("metrics are served");
    let before = scrape(addr).await;
    let created =
        |body: &str| sample(body, "partner_center_rpc_requests_total", &[r#"method="create_partner""#, r#"code="OK""#]);
    let missing = |body: &str| {
        sample(body, "partner_center_rpc_requests_total", &[r#"method="get_partner""#, r#"code="NOT_FOUND""#])
    };

    let mut operator = app.partners();
    let request = CreatePartnerRequest {
        partner: Some(new_partner(ProgramRole::DirectBillPartner, Cloud::Global)),
        ..Default::default()
    };
    operator.create_partner(request).await.unwrap();
    let unknown = format!("partners/{}", uuid::Uuid::now_v7());
    assert!(operator.get_partner(GetPartnerRequest { name: unknown }).await.is_err());
    // The limit is 1 per second with a burst of 2: the burst is spent, so these are refused.
    for _ in 0..3 {
        let _ = operator.list_partners(ListPartnersRequest::default()).await;
    }

    let after = scrape(addr).await;
    assert!(created(&after) >= created(&before) + 1.0, "{after}");
    assert!(missing(&after) >= missing(&before) + 1.0, "{after}");
    let latency =
        |body: &str| sample(body, "partner_center_rpc_duration_seconds_count", &[r#"method="create_partner""#]);
    assert!(latency(&after) >= latency(&before) + 1.0, "{after}");
    assert!(sample(&after, "partner_center_rate_limited_total", &[]) >= 1.0, "{after}");
    for present in ["partner_center_rpc_in_flight", "partner_center_db_acquire_seconds_count"] {
        assert!(after.lines().any(|line| line.starts_with(present)), "{present} missing:\n{after}");
    }
    // The pool gauges are read every second.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let pools = scrape(addr).await;
    assert!(pools.contains(r#"partner_center_db_pool_connections{pool="primary",state="idle"}"#), "{pools}");

    match which_promtool() {
        Some(promtool) => {
            let mut check = tokio::process::Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            check.stdin.take().unwrap().write_all(pools.as_bytes()).await.unwrap();
            let output = check.wait_with_output().await.unwrap();
            let said = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "promtool check metrics: {said}");
        }
        None => assert!(std::env::var_os("CI").is_none(), "CI must have promtool (Debian package prometheus)"),
    }
}

fn which_promtool() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("promtool"))
        .find(|path| path.is_file())
}

/// With `RATE_LIMIT_REDIS_URL` and Redis working, `partner_center_rate_limit_shared` is 1 from
/// the first scrape, before any call, in a process of its own (in this test process another
/// test's server may have set the gauge already).
#[tokio::test]
async fn the_shared_rate_limit_gauge_is_1_from_the_first_scrape() {
    let Some(redis) = std::env::var("PC_TEST_REDIS_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("PC_TEST_REDIS_URL is unset: the shared rate limit's gauge is not tested");
        return;
    };
    let app = pc_tests::spawn_app().await;
    let env =
        [("RATE_LIMIT_PER_SECOND", "100"), ("RATE_LIMIT_REDIS_URL", redis.as_str()), ("METRICS_ADDR", "127.0.0.1:0")];
    let server = pc_tests::ServerProcess::start(&app.database_url(), &env).await;
    let addr = server.metrics_addr.expect("metrics are served");
    let shared = |body: &str| {
        let present = body.lines().any(|line| line.starts_with("partner_center_rate_limit_shared "));
        present.then(|| sample(body, "partner_center_rate_limit_shared", &[]))
    };
    let first = scrape(addr).await;
    assert_eq!(shared(&first), Some(1.0), "{first}");
    let mut client = pc_api::partner::v1::partner_service_client::PartnerServiceClient::with_interceptor(
        server.channel.clone(),
        pc_tests::Bearer::signed_with_test_secret("operator"),
    );
    client.list_partners(ListPartnersRequest::default()).await.expect("a call within the limit");
    let after = scrape(addr).await;
    assert_eq!(shared(&after), Some(1.0), "{after}");
}
