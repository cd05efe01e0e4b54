//! Fetching playlists: the first one, and the media playlists of the renditions a task wants.
//!
//! Playlists are read with the variables they may use (`EXT-X-DEFINE`): the query of the URL each was
//! fetched from (after redirects) for `QUERYPARAM`, and the master playlist's variables for a media
//! playlist's `IMPORT`.

use std::sync::{Arc, Mutex};

use stowage_playlist::{MasterPlaylist, PlaylistKind, detect};

use super::auth::Auth;
use super::errors::{fetch_error, join_error};
use crate::Error;
use crate::TaskEvent;
use crate::config::{KeyPolicy, RecordingConfiguration};
use crate::planning::{
    Built, LiveTrack, Tolerated, Wanted, build_rendition, check_segment_count, common_end, common_start,
    is_live, judge, parser_options,
};
use crate::runtime::shared::{Hearer, SessionInner, lock};
use crate::runtime::task::TaskShared;

/// Largest playlist accepted, in bytes.
const MAX_PLAYLIST: u64 = 16 << 20;

/// Fetches a playlist as text for `task`; returns it with the final URL (after redirects). The fetch
/// layer's retries of it are told to the task's listeners as they happen.
pub(super) async fn fetch_text(
    session: &SessionInner,
    task: &Arc<TaskShared>,
    auth: &Mutex<Auth>,
    url: &str,
) -> Result<(String, String), Error> {
    let req = lock(auth).request(url).map_err(|e| fetch_error(url, e))?.max_size(MAX_PLAYLIST);
    let _listening = session.listen(req.uri().to_string().as_str(), Hearer::Task(Arc::clone(task)));
    task.counters.request();
    let response = session.client.get(req).await.map_err(|e| fetch_error(url, e))?;
    let final_url = response.uri().to_owned();
    let bytes = response.bytes().await.map_err(|e| fetch_error(url, e))?;
    task.counters.received(bytes.len() as u64);
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| Error::Playlist {
        uri: final_url.clone(),
        message: "not UTF-8 text".to_owned(),
        source: None,
    })?;
    Ok((text, final_url))
}

/// A master playlist, read, with the variables it defines (which its media playlists may import).
pub(super) struct Master<'t> {
    pub(super) playlist: MasterPlaylist<'t>,
    pub(super) variables: Vec<(String, String)>,
    /// The cosmetic deviations the lenient parse tolerated, for the task to tell.
    pub(super) tolerated: Tolerated,
}

/// Reads a master playlist fetched from `uri` (its query gives the values of `QUERYPARAM` variables). A
/// deviation that touches a variant or rendition is an error naming its line.
pub(super) fn parse_master<'t>(text: &'t str, uri: &str) -> Result<Master<'t>, Error> {
    let parsed = MasterPlaylist::parse_with(text, &parser_options(uri, &[]))
        .map_err(|e| Error::Playlist { uri: uri.to_owned(), message: e.to_string(), source: Some(e) })?;
    let tolerated = judge(uri, parsed.warnings)?;
    Ok(Master { playlist: parsed.playlist, variables: parsed.variables, tolerated })
}

/// Tells the task's listeners what a lenient parse of the playlist at `uri` tolerated, if anything.
pub(super) fn tell_tolerated(session: &SessionInner, task: &TaskShared, uri: &str, tolerated: &Tolerated) {
    if !tolerated.warnings.is_empty() {
        task.emit(
            session,
            TaskEvent::PlaylistTolerated {
                uri: uri.to_owned(),
                warnings: tolerated.warnings.clone(),
                more: tolerated.more,
            },
        );
    }
}

/// Fetches and reads every wanted media playlist, concurrently. A live or EVENT playlist is read as the
/// start of a recording configured by `recording`: its plan holds the segments the recording starts with.
/// The live renditions of one task start at the same segment (by program date time, else by number), the
/// latest of the starts each would choose alone, so that audio and video cover the same span.
pub(super) async fn build_all(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    auth: &Arc<Mutex<Auth>>,
    wanted: &[Wanted],
    first: usize,
    key_policy: KeyPolicy,
    recording: &RecordingConfiguration,
) -> Result<Vec<Built>, Error> {
    /// A media playlist fetched: read at once when it is a whole one, kept as text when it is live (its
    /// start depends on the other live renditions').
    enum Fetched {
        Whole(Box<Built>),
        Live { text: String, final_url: String },
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, w) in wanted.iter().enumerate() {
        let (session, task, auth, w) = (Arc::clone(session), Arc::clone(task), Arc::clone(auth), w.clone());
        set.spawn(async move {
            let (text, final_url) = fetch_text(&session, &task, &auth, &w.url).await?;
            if detect(text.as_bytes()) == Some(PlaylistKind::Master) {
                return Err(Error::Playlist {
                    uri: final_url,
                    message: "a master playlist where a media playlist was expected".to_owned(),
                    source: None,
                });
            }
            check_segment_count(&text, &final_url, session.config.max_playlist_segments)?;
            if is_live(&text) {
                return Ok((i, Fetched::Live { text, final_url }));
            }
            // Whole playlists are read on their tasks, side by side.
            let built = build_rendition(&w, first + i, &text, &final_url, key_policy)?;
            tell_tolerated(&session, &task, &final_url, &built.tolerated);
            Ok((i, Fetched::Whole(Box::new(built))))
        });
    }
    let mut fetched: Vec<Option<Fetched>> = (0..wanted.len()).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, f) = r.map_err(|e| join_error("the load of a media playlist", e))??;
        fetched[i] = Some(f);
    }
    let live: Vec<(&str, &str)> = fetched
        .iter()
        .filter_map(|f| match f {
            Some(Fetched::Live { text, final_url }) => Some((text.as_str(), final_url.as_str())),
            _ => None,
        })
        .collect();
    let anchor = common_start(&live, recording.start)?;
    let limit = recording.duration.map(|d| d.as_secs_f64());
    let mut tracks: Vec<Option<LiveTrack>> = Vec::with_capacity(wanted.len());
    for f in &fetched {
        tracks.push(match f {
            Some(Fetched::Live { text, final_url }) => {
                Some(LiveTrack::start_aligned(text, final_url, recording.start, limit, anchor)?)
            }
            _ => None,
        });
    }
    // They end where every one of them lists, as they start: what one lists past that waits for the
    // others' next reloads.
    let end = common_end(tracks.iter().flatten());
    let mut built = Vec::with_capacity(wanted.len());
    for (i, ((w, f), track)) in wanted.iter().zip(fetched).zip(tracks).enumerate() {
        match (f, track) {
            (Some(Fetched::Whole(b)), _) => built.push(*b),
            (Some(Fetched::Live { final_url, .. }), Some(mut track)) => {
                let batch = track.first_batch(end);
                let mut b = build_rendition(w, first + i, &batch.text, &final_url, key_policy)?;
                tell_tolerated(session, task, &final_url, &b.tolerated);
                b.live = Some(track);
                built.push(b);
            }
            _ => {}
        }
    }
    Ok(built)
}
