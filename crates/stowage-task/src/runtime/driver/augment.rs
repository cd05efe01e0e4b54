//! Media selections added to a running task: more renditions of the same variant.

use std::time::Instant;

use stowage_bundle::{RenditionId, RenditionKind};

use super::bundle_io::{blocking, record_source_gaps};
use super::pipeline::{read, write};
use super::playlists::{Master, build_all, fetch_text, parse_master};
use super::runner::Runner;
use crate::Error;
use crate::config::{ContentConfiguration, MediaSelection};
use crate::engine::{JobId, JobSpec, RenditionSpec};
use crate::events::TaskEvent;
use crate::planning::{
    Job, Wanted, job_spec, key_jobs, merge_inits, rebind_to_master, wanted_from_selection,
};
use crate::runtime::shared::lock;
use crate::selection::{ResolvedSelection, resolve_for_variant};

impl<'a> Runner<'a> {
    /// Adds the renditions `selections` choose from the variant the task downloads (the bundle's own,
    /// found in the master playlist read now) to the running download: their playlists are fetched, the
    /// bundle and the engine take their segments, and renditions already in the task are left as they
    /// are. Returns how many renditions were added.
    pub(super) async fn augment(&mut self, selections: Vec<MediaSelection>) -> Result<usize, Error> {
        if self.is_recording() {
            return Err(Error::InvalidConfig { reason: "media selections cannot be added to a recording" });
        }
        let variant = self.wanted.iter().find(|w| w.primary && w.kind == RenditionKind::Video);
        if !self.master || variant.is_none_or(|v| v.master_uri.is_none()) {
            return Err(Error::InvalidConfig { reason: "media selections need a master playlist" });
        }
        let url = lock(&self.task.url).clone();
        let (text, final_url) = fetch_text(self.session, self.task, &self.ctx.auth, &url).await?;
        let master = parse_master(&text, &final_url)?;
        let index = self.variant_in(&master, &final_url)?;
        let mut content = ContentConfiguration::new();
        for selection in selections {
            content = content.media_selection(selection);
        }
        let selection =
            ResolvedSelection { contents: vec![resolve_for_variant(&content, &master.playlist, index)?] };
        let mut taken: Vec<RenditionId> = self.wanted.iter().map(|w| w.id.clone()).collect();
        let added: Vec<Wanted> =
            wanted_from_selection(&selection, &final_url, &master.variables, &mut taken)?
                .into_iter()
                .filter(|w| w.kind != RenditionKind::Video || w.group_id.is_some())
                .filter(|w| !self.wanted.iter().any(|have| same_rendition(have, w)))
                .collect();
        if added.is_empty() {
            return Ok(0);
        }
        self.emit(TaskEvent::MediaSelectionResolved(selection));
        let built = build_all(
            self.session,
            self.task,
            &self.ctx.auth,
            &added,
            self.wanted.len(),
            self.key_policy,
            &Default::default(),
        )
        .await?;
        if built.iter().any(|b| b.live.is_some()) {
            return Err(Error::InvalidConfig { reason: "a live rendition cannot be added to a download" });
        }
        let plans: Vec<_> = built.iter().map(|b| b.plan.clone()).collect();
        let bundle = self.ctx.bundle.clone();
        blocking(&self.task.bundle_path, move || bundle.add_renditions(plans)).await?;
        for w in &added {
            self.engine.add_rendition(match w.estimate {
                Some(b) => RenditionSpec::new().bandwidth(b),
                None => RenditionSpec::new(),
            });
        }
        let first = read(&self.ctx.bound).jobs.next_id();
        let mut jobs = merge_inits(built.into_iter().flat_map(|b| b.jobs).collect());
        record_source_gaps(&self.task.bundle_path, &self.ctx.bundle, &jobs).await?;
        // Keys the task already prefetches are loaded once for all renditions: only new ones get a job.
        let keys: Vec<Job> =
            key_jobs(&jobs, |_| true).into_iter().filter(|k| !self.key_jobs.contains_key(&k.uri)).collect();
        jobs.extend(keys);
        let specs: Vec<JobSpec<'_>> = jobs
            .iter()
            .enumerate()
            .filter(|(_, job)| !job.source_gap)
            .map(|(i, job)| job_spec(JobId(first + i as u64), job))
            .collect();
        self.engine.add_jobs(Instant::now(), specs)?;
        let count = added.len();
        write(&self.ctx.bound).jobs.extend(jobs);
        self.index_key_jobs();
        lock(&self.task.renditions).extend(added.iter().map(|w| w.id.to_string()));
        self.wanted.extend(added);
        Ok(count)
    }

    /// The index, among the variants of `master` (read from `url`), of the variant the task downloads:
    /// found by its identity (bandwidth, codecs, resolution), and among equal ones (a video offered with
    /// several audio groups, say) the one whose groups hold the task's renditions.
    fn variant_in(&self, master: &Master<'_>, url: &str) -> Result<usize, Error> {
        let mut found: Vec<Wanted> = self
            .wanted
            .iter()
            .filter(|w| w.primary && w.kind == RenditionKind::Video)
            .take(1)
            .cloned()
            .collect();
        rebind_to_master(&mut found, &master.playlist, url, &master.variables)?;
        let uri = found.first().and_then(|w| w.master_uri.clone()).unwrap_or_default();
        let groups: Vec<&str> = self.wanted.iter().filter_map(|w| w.group_id.as_deref()).collect();
        master
            .playlist
            .variants()
            .enumerate()
            .filter(|(_, v)| v.uri == uri.as_str())
            .max_by_key(|(i, v)| {
                let inf = &v.stream_inf;
                let shared = [inf.audio(), inf.subtitles(), inf.video()]
                    .into_iter()
                    .flatten()
                    .filter(|g| groups.contains(g))
                    .count();
                // The first of equals: the larger index loses.
                (shared, std::cmp::Reverse(*i))
            })
            .map(|(i, _)| i)
            .ok_or_else(|| Error::Playlist {
                uri: url.to_owned(),
                message: format!("the master playlist no longer offers the variant {uri}"),
                source: None,
            })
    }
}

/// Whether two renditions are the same one of the master playlist: by type, group, name and language
/// (their URIs may be signed anew).
fn same_rendition(a: &Wanted, b: &Wanted) -> bool {
    a.kind == b.kind && a.group_id == b.group_id && a.name == b.name && a.language == b.language
}
