//! Media selections added to a running task: more renditions of the same variant.

use std::time::Instant;

use stowage_bundle::RenditionId;

use super::bundle_io::{blocking, record_source_gaps};
use super::pipeline::{read, write};
use super::playlists::{build_all, fetch_text, parse_master};
use super::runner::Runner;
use crate::Error;
use crate::config::{ContentConfiguration, DownloadConfiguration, MediaSelection};
use crate::engine::{JobId, JobSpec, RenditionSpec};
use crate::events::TaskEvent;
use crate::planning::{Job, Wanted, job_spec, key_jobs, merge_inits, wanted_from_selection};
use crate::runtime::shared::lock;
use crate::selection::resolve;

impl<'a> Runner<'a> {
    /// Adds the renditions `selections` choose (from the variant the task's configuration chooses) to the
    /// running download: their playlists are fetched, the bundle and the engine take their segments, and
    /// renditions already in the task are left as they are. Returns how many renditions were added.
    pub(super) async fn augment(&mut self, selections: Vec<MediaSelection>) -> Result<usize, Error> {
        if !self.master {
            return Err(Error::InvalidConfig { reason: "media selections need a master playlist" });
        }
        let mut config = self
            .download_config
            .clone()
            .unwrap_or_else(|| DownloadConfiguration::new(ContentConfiguration::new()));
        for selection in selections {
            config.primary = config.primary.media_selection(selection);
        }
        let url = lock(&self.task.url).clone();
        let (text, final_url) = fetch_text(self.session, self.task, &self.ctx.auth, &url).await?;
        let master = parse_master(&text, &final_url)?;
        let selection = resolve(&config, &master.playlist)?;
        let variants: Vec<&str> = selection.contents.iter().map(|c| c.variant.uri.as_str()).collect();
        let mut taken: Vec<RenditionId> = self.wanted.iter().map(|w| w.id.clone()).collect();
        let added: Vec<Wanted> =
            wanted_from_selection(&selection, &final_url, &master.variables, &mut taken)?
                .into_iter()
                .filter(|w| w.master_uri.as_deref().is_some_and(|u| !variants.contains(&u)))
                .filter(|w| !self.wanted.iter().any(|have| have.master_uri == w.master_uri))
                .collect();
        if added.is_empty() {
            return Ok(0);
        }
        self.emit(TaskEvent::MediaSelectionResolved(selection));
        let built =
            build_all(self.session, self.task, &self.ctx.auth, &added, self.wanted.len(), self.key_policy)
                .await?;
        let plans: Vec<_> = built.iter().map(|b| b.plan.clone()).collect();
        let bundle = self.ctx.bundle.clone();
        blocking(&self.task.bundle_path, move || bundle.add_renditions(plans)).await?;
        for w in &added {
            self.engine.add_rendition(match w.estimate {
                Some(b) => RenditionSpec::new().bandwidth(b),
                None => RenditionSpec::new(),
            });
        }
        let first = read(&self.ctx.bound).jobs.len();
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
            .map(|(i, job)| job_spec(JobId((first + i) as u64), job))
            .collect();
        self.engine.add_jobs(Instant::now(), specs)?;
        let count = added.len();
        write(&self.ctx.bound).jobs.extend(jobs);
        self.index_key_jobs();
        lock(&self.task.renditions).extend(added.iter().map(|w| w.id.to_string()));
        self.wanted.extend(added);
        Ok(count)
    }
}
