//! Connection limits, the shared rate limit, and per-host counters.

mod common;

use std::time::{Duration, Instant};

use common::{data, quick};
use stowage_fetch::{Client, Request};
use stowage_origin::{Fault, FaultRule, Files, HttpVersions, Origin, OriginConfig};

#[tokio::test]
async fn per_host_connection_limit_is_respected() {
    let origin = Origin::start(
        Files::new().with_bytes("/seg.ts", data(20_000)),
        OriginConfig::default().versions(HttpVersions::Http1Only),
    )
    .unwrap();
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(20))).path("/seg.ts"));
    let client = Client::new(quick().max_connections_per_host(2)).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let url = origin.url("/seg.ts");
            tokio::spawn(async move { client.get_bytes(Request::get(&url).unwrap()).await.unwrap().len() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 20_000);
    }
    let mut conns: Vec<u64> = origin.log().iter().map(|r| r.connection).collect();
    conns.sort_unstable();
    conns.dedup();
    assert!(conns.len() <= 2, "{} connections opened", conns.len());
    let c = client.counters();
    assert_eq!(c.requests, 8);
    assert!(c.connections_opened <= 2);
    assert_eq!(c.connections_reused, 8 - c.connections_opened);
}

#[tokio::test]
async fn global_limit_spans_hosts_and_idle_connections_never_block_it() {
    let one = |_: ()| {
        Origin::start(
            Files::new().with_bytes("/x", data(1000)),
            OriginConfig::default().versions(HttpVersions::Http1Only),
        )
        .unwrap()
    };
    let (a, b) = (one(()), one(()));
    a.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(100))).path("/x"));
    // One request in flight in all, and a first-byte deadline far shorter than the pool's idle timeout:
    // an idle connection to the first host must not keep the second host waiting.
    let cfg = quick()
        .max_connections(1)
        .timeouts(stowage_fetch::Timeouts::default().first_byte(Some(Duration::from_secs(2))));
    let client = Client::new(cfg).unwrap();
    assert_eq!(client.get_bytes(Request::get(&a.url("/x")).unwrap()).await.unwrap().len(), 1000);
    assert_eq!(client.get_bytes(Request::get(&b.url("/x")).unwrap()).await.unwrap().len(), 1000);

    // Concurrently, the second request waits for the first one's body to end.
    let (ca, cb) = (client.clone(), client.clone());
    let (ua, ub) = (a.url("/x"), b.url("/x"));
    let started = Instant::now();
    let ta = tokio::spawn(async move {
        ca.get_bytes(Request::get(&ua).unwrap()).await.map(|b| (b.len(), Instant::now()))
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let tb = tokio::spawn(async move {
        cb.get_bytes(Request::get(&ub).unwrap()).await.map(|b| (b.len(), Instant::now()))
    });
    let (la, done_a) = ta.await.unwrap().unwrap();
    let (lb, done_b) = tb.await.unwrap().unwrap();
    assert_eq!((la, lb), (1000, 1000));
    assert!(done_b > done_a, "the second host was served only after the first request ended");
    assert!(started.elapsed() < Duration::from_secs(2));
    let c = client.counters();
    assert_eq!(c.hosts.len(), 2);
    assert_eq!(c.connections_opened, 2, "each host's connection was reused");
}

#[tokio::test]
async fn shared_rate_limit_paces_concurrent_bodies() {
    let body = data(150_000);
    let origin =
        Origin::start(Files::new().with_bytes("/seg.ts", body.clone()), OriginConfig::default()).unwrap();
    // 1 MB/s shared by three transfers of 150 kB: after the 250 kB burst, 200 kB wait 0.2 s at least.
    let client = Client::new(quick().rate_limit(Some(1_000_000))).unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            let url = origin.url("/seg.ts");
            tokio::spawn(async move { client.get_bytes(Request::get(&url).unwrap()).await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap() == body);
    }
    assert!(started.elapsed() >= Duration::from_millis(180), "{:?}", started.elapsed());
    // Lifted at run time.
    client.set_rate_limit(None);
    assert!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap() == body);
}

#[tokio::test]
async fn per_host_throughput_estimate_appears_after_a_transfer() {
    let body = data(2_000_000);
    let origin = Origin::start(Files::new().with_bytes("/seg.ts", body), OriginConfig::default()).unwrap();
    // Throttled so the transfer spans several estimation windows.
    origin.faults().add(FaultRule::new(Fault::throttle(4_000_000)).path("/seg.ts"));
    let client = Client::new(quick()).unwrap();
    client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
    let c = client.counters();
    let t = c.hosts[0].throughput;
    assert!(t > 1_000_000.0 && t < 16_000_000.0, "estimate {t} B/s for a 4 MB/s drip");
}
