//! Task control: suspend and resume, cancel (keeping or removing the partial bundle), restore after the
//! session is dropped mid-download, and adding media selections to an asset already stored.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use stowage_bundle::Bundle;
use stowage_origin::{Fault, FaultRule, OriginConfig};
use stowage_task::config::MediaSelection;
use stowage_task::{
    CancelMode, ContentConfiguration, DownloadConfiguration, DownloadSession, DownloadTask, Error, TaskEvent,
    TaskState,
};

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

/// A session that fetches one segment at a time, so that a download can be caught in the middle.
fn slow_session(store: &std::path::Path) -> DownloadSession {
    DownloadSession::new(common::config(store).max_connections(1).adaptive(false)).unwrap()
}

async fn wait_for_segments(task: &DownloadTask, n: usize) {
    let mut events = task.events();
    task.resume();
    tokio::time::timeout(Duration::from_secs(20), async {
        while task.progress().segments_done < n {
            events.recv().await.expect("the task goes on");
        }
    })
    .await
    .expect("segments arrive");
}

fn segment_requests(origin: &stowage_origin::Origin, prefix: &str) -> usize {
    origin.log().iter().filter(|r| r.path.starts_with(prefix) && r.path.ends_with(".ts")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_fetching_and_resume_completes() {
    let origin = common::origin(OriginConfig::default());
    origin
        .faults()
        .add(FaultRule::new(Fault::Latency(Duration::from_millis(150))).prefix("/clear/video2/seg"));
    let store = tempfile::tempdir().unwrap();
    let session = slow_session(store.path());
    let mut all = session.events();
    let task = session.download_task(&origin.url("/clear/video2/index.m3u8"), media()).unwrap();
    wait_for_segments(&task, 2).await;
    task.suspend();
    task.wait_for_state(|s| s == TaskState::Suspended).await;
    // The fetches in flight were stopped before the task said it was suspended, so no request leaves
    // from now on. The client's own count of requests sent says so exactly; the origin's log would not,
    // since it logs a request when it answers it, which for one aborted in flight may be later.
    let before = session.counters().requests;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(session.counters().requests, before, "nothing fetched while suspended");
    assert!(task.progress().segments_done < 6);

    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    // At most the jobs under way at the suspend were fetched again: the one on the wire, and the one
    // whose body had come but was not yet stored (the engine hands out a job more than there are request
    // slots, so that one segment's sync overlaps the next fetch).
    let requests = segment_requests(&origin, "/clear/video2/");
    assert!(requests <= 8, "{requests} segment requests");
    // The session-wide stream saw the task's events, named by asset.
    let first = all.recv().await.unwrap();
    assert_eq!(first.asset, task.asset());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_keeps_or_removes_the_partial_bundle() {
    let origin = common::origin(OriginConfig::default());
    origin
        .faults()
        .add(FaultRule::new(Fault::Latency(Duration::from_millis(60))).prefix("/clear/video1/seg"));
    let url = origin.url("/clear/video1/index.m3u8");
    let store = tempfile::tempdir().unwrap();
    let session = slow_session(store.path());

    let task = session.download_task_named("removed", &url, media()).unwrap();
    wait_for_segments(&task, 1).await;
    task.cancel(CancelMode::RemovePartial);
    assert!(matches!(task.wait().await, Err(Error::Cancelled)));
    assert_eq!(task.state(), TaskState::Cancelled);
    assert!(!task.bundle_path().exists(), "the partial bundle is removed");

    let task = session.download_task_named("kept", &url, media()).unwrap();
    wait_for_segments(&task, 2).await;
    task.cancel(CancelMode::KeepPartial);
    assert!(matches!(task.wait().await, Err(Error::Cancelled)));
    let kept: HashSet<String> = {
        let bundle = Bundle::open(task.bundle_path()).unwrap();
        assert!(!bundle.manifest().finished);
        let finished = bundle.finished_segments();
        assert!(finished.len() >= 2);
        finished.iter().map(|id| format!("/clear/video1/seg{:03}.ts", id.media_sequence)).collect()
    };
    // A new task for the same asset continues from what was kept.
    origin.clear_log();
    let task = session.download_task_named("kept", &url, media()).unwrap();
    common::run(&task).await;
    assert_eq!(common::check_bundle(&task.wait().await.unwrap()), 6);
    for r in origin.log() {
        assert!(!kept.contains(&r.path), "{} was kept and fetched again", r.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_after_the_session_is_dropped_fetches_no_finished_segment_twice() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(40))).glob("/aes/*/seg*"));
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/master.m3u8");
    let config = DownloadConfiguration::new(
        ContentConfiguration::new().media_selection(MediaSelection::subtitles_language("en")),
    );
    {
        let session = slow_session(store.path());
        let task = session.download_task(&url, config).unwrap();
        wait_for_segments(&task, 5).await;
        drop(session);
        assert!(matches!(task.wait().await, Err(Error::SessionClosed)));
    }
    // What the journal holds is the truth.
    let finished: HashSet<String> = {
        let bundle = Bundle::open(store.path().join(stowage_task::asset_id_for(&url))).unwrap();
        let manifest = bundle.manifest();
        assert!(!manifest.finished);
        let done: HashSet<_> = bundle.finished_segments().into_iter().collect();
        assert!(done.len() >= 5);
        manifest
            .renditions
            .iter()
            .flat_map(|r| r.plan.segments.iter().map(|s| (s.id(&r.plan.id), s.uri.clone())))
            .filter(|(id, _)| done.contains(id))
            .map(|(_, uri)| uri.split_once("://").unwrap().1.split_once('/').unwrap().1.to_owned())
            .map(|p| format!("/{p}"))
            .collect()
    };
    origin.clear_log();
    let session = common::session(store.path());
    let restored = session.restore().unwrap();
    assert_eq!(restored.len(), 1);
    let task = &restored[0];
    assert_eq!(task.url(), url);
    let events = common::run(task).await;
    assert!(events.iter().any(|e| matches!(e, TaskEvent::WillDownloadTo { .. })));
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6 + 7 + 6);
    let log = origin.log();
    for r in &log {
        assert!(!finished.contains(&r.path), "{} was finished and fetched again", r.path);
    }
    let fetched = log.iter().filter(|r| r.path.contains("/seg")).count();
    assert_eq!(fetched, 19 - finished.len());
    // Nothing is left to restore.
    assert!(session.restore().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_media_selection_downloads_only_what_is_missing() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let url = origin.url("/clear/master.m3u8");
    let task = session.download_task(&url, DownloadConfiguration::new(ContentConfiguration::new())).unwrap();
    common::run(&task).await;
    task.wait().await.unwrap();

    origin.clear_log();
    let more = DownloadConfiguration::new(
        ContentConfiguration::new()
            .media_selection(MediaSelection::audio_all())
            .media_selection(MediaSelection::subtitles_language("fr")),
    );
    let task = session.download_task(&url, more).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6 + 7 + 7 + 6);
    let fetched: Vec<String> =
        origin.log().into_iter().filter(|r| r.path.contains("/seg")).map(|r| r.path).collect();
    assert_eq!(fetched.len(), 7 + 6, "{fetched:?}");
    assert!(fetched.iter().all(|p| p.starts_with("/clear/audio-fr/") || p.starts_with("/clear/subs-fr/")));
    let master = std::fs::read_to_string(path.join("master.m3u8")).unwrap();
    assert!(master.contains("LANGUAGE=\"fr\""), "{master}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_selections_added_to_a_running_task_are_downloaded_too() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(20))).glob("/clear/*/seg*"));
    let store = tempfile::tempdir().unwrap();
    let session = slow_session(store.path());
    let task = session
        .download_task(
            &origin.url("/clear/master.m3u8"),
            DownloadConfiguration::new(ContentConfiguration::new()),
        )
        .unwrap();
    // Before the task runs there is nothing to add to.
    assert!(task.add_media_selections(vec![MediaSelection::subtitles_language("fr")]).await.is_err());
    wait_for_segments(&task, 2).await;
    let added = task.add_media_selections(vec![MediaSelection::subtitles_language("fr")]).await.unwrap();
    assert_eq!(added, 1);
    // Asking again adds nothing.
    assert_eq!(task.add_media_selections(vec![MediaSelection::subtitles_language("fr")]).await.unwrap(), 0);
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6 + 7 + 6);
    assert_eq!(task.progress().segments_total, 19);
    assert!(path.join("subs-fr/index.m3u8").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_beyond_the_session_limit_wait_their_turn() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(150))).glob("/clear/*/seg*"));
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).max_tasks(1)).unwrap();
    let mut tasks = Vec::new();
    for v in 0..3 {
        let url = origin.url(&format!("/clear/video{v}/index.m3u8"));
        tasks.push(session.download_task(&url, media()).unwrap());
    }
    assert!(
        session.download_task(&origin.url("/clear/video0/index.m3u8"), media()).is_err(),
        "one task per asset"
    );
    let mut all = session.events();
    for t in &tasks {
        t.resume();
    }
    // Whichever task got the slot runs (each of its segments takes 150 ms); the others wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let states: Vec<TaskState> = tasks.iter().map(DownloadTask::state).collect();
        let running = states.iter().filter(|s| **s == TaskState::Running).count();
        let waiting = states.iter().filter(|s| **s == TaskState::Waiting).count();
        assert!(running <= 1, "{states:?}");
        if (running, waiting) == (1, 2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for t in &tasks {
        assert_eq!(common::check_bundle(&t.wait().await.unwrap()), 6);
    }
    // The session-wide stream names every task.
    let mut assets = HashSet::new();
    while assets.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), all.recv()).await.unwrap().unwrap();
        assets.insert(event.asset);
    }
    assert_eq!(session.tasks().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_never_resumed_is_restored_after_a_restart_with_its_configuration() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/clear/master.m3u8");
    let config = DownloadConfiguration::new(
        ContentConfiguration::new()
            .variant_qualifier("lowest".parse().unwrap())
            .media_selection(MediaSelection::subtitles_language("fr")),
    )
    .title("Made, never started");
    {
        let session = common::session(store.path());
        let task = session.download_task(&url, config).unwrap();
        assert_eq!(task.state(), TaskState::Suspended);
        // The application quits before the task ever runs.
    }
    assert!(origin.log().is_empty(), "nothing was fetched");
    let session = common::session(store.path());
    let restored = session.restore().unwrap();
    assert_eq!(restored.len(), 1, "the task made before the restart is found");
    let task = &restored[0];
    assert_eq!(task.url(), url);
    common::run(task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6 + 7 + 6);
    // As it was asked: the lowest variant, the default audio and French subtitles, with its title.
    assert_eq!(task.renditions(), ["video-0", "audio-en", "subs-fr"]);
    let bundle = Bundle::open(&path).unwrap();
    assert_eq!(bundle.manifest().asset.title.as_deref(), Some("Made, never started"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_download_is_not_restored_but_a_new_task_continues_it() {
    let origin = common::origin(OriginConfig::default());
    origin
        .faults()
        .add(FaultRule::new(Fault::Latency(Duration::from_millis(60))).prefix("/clear/video1/seg"));
    let url = origin.url("/clear/video1/index.m3u8");
    let store = tempfile::tempdir().unwrap();
    {
        let session = slow_session(store.path());
        let task = session.download_task_named("kept", &url, media()).unwrap();
        wait_for_segments(&task, 2).await;
        task.cancel(CancelMode::KeepPartial);
        assert!(matches!(task.wait().await, Err(Error::Cancelled)));
        // Cancelled before it ever ran, keeping nothing but the record: not restored either.
        let never = session.download_task_named("never", &url, media()).unwrap();
        never.cancel(CancelMode::KeepPartial);
        assert!(matches!(never.wait().await, Err(Error::Cancelled)));
    }
    let session = common::session(store.path());
    assert!(session.restore().unwrap().is_empty(), "a cancel is not undone by a restart");
    let kept = Bundle::open(store.path().join("kept")).unwrap().finished_segments().len();
    assert!(kept >= 2);
    // A new task for the asset continues from what the cancelled one kept.
    origin.clear_log();
    let task = session.download_task_named("kept", &url, media()).unwrap();
    common::run(&task).await;
    assert_eq!(common::check_bundle(&task.wait().await.unwrap()), 6);
    assert_eq!(segment_requests(&origin, "/clear/video1/"), 6 - kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_selections_added_to_a_restored_task_come_from_its_own_variant() {
    // Two variants with audio groups of their own: `lo` for the low one, `hi` for the high one.
    let origin = common::origin(OriginConfig::default());
    origin.files().load_dir("/hi", common::assets().join("clear")).unwrap();
    let audio = |group: &str, base: &str, lang: &str, name: &str, default: &str| {
        format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{group}\",LANGUAGE=\"{lang}\",NAME=\"{name}\",DEFAULT={default},\
             URI=\"/{base}/audio-{lang}/index.m3u8\"\n"
        )
    };
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
    master.push_str(&audio("lo", "clear", "en", "English", "YES"));
    master.push_str(&audio("lo", "clear", "fr", "French", "NO"));
    master.push_str(&audio("hi", "hi", "en", "English", "YES"));
    master.push_str(&audio("hi", "hi", "fr", "French", "NO"));
    master.push_str(
        "#EXT-X-STREAM-INF:BANDWIDTH=549529,RESOLUTION=320x180,CODECS=\"avc1.64000c,mp4a.40.2\",AUDIO=\"lo\"\n\
         /clear/video0/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=950345,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"hi\"\n\
         /hi/video2/index.m3u8\n",
    );
    origin.files().insert_bytes("/groups/master.m3u8", master);
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(40))).glob("/clear/*/seg*"));
    let url = origin.url("/groups/master.m3u8");
    let store = tempfile::tempdir().unwrap();
    let config =
        DownloadConfiguration::new(ContentConfiguration::new().variant_qualifier("lowest".parse().unwrap()));
    {
        let session = slow_session(store.path());
        let task = session.download_task(&url, config).unwrap();
        wait_for_segments(&task, 2).await;
        drop(session);
        assert!(matches!(task.wait().await, Err(Error::SessionClosed)));
    }
    let session = slow_session(store.path());
    let task = session.restore().unwrap().remove(0);
    let mut events = task.events();
    task.resume();
    // Once the restored task runs its engine (its first progress), selections can be added to it.
    tokio::time::timeout(Duration::from_secs(20), async {
        while !matches!(events.recv().await, Some(TaskEvent::Progress(_))) {}
    })
    .await
    .expect("the restored task runs");
    let added = task.add_media_selections(vec![MediaSelection::audio_language("fr")]).await.unwrap();
    assert_eq!(added, 1);
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6 + 7 + 7);
    let bundle = Bundle::open(&path).unwrap();
    let french =
        bundle.manifest().renditions.iter().find(|r| r.plan.language.as_deref() == Some("fr")).cloned();
    let french = french.expect("French audio was added");
    assert_eq!(french.plan.group_id.as_deref(), Some("lo"), "from the low variant's own group");
    assert!(origin.log().iter().all(|r| !r.path.starts_with("/hi/")), "nothing of the other variant");
}
