//! The task's policies: where they come from (the configuration, or the bundle being continued), how the
//! bundle records them, and the plan of a new bundle.

use stowage_bundle::{AssetInfo, BundlePlan, ContentRequest, DownloadRequest, Manifest, ManifestChanges};

use super::Built;
use crate::Error;
use crate::config::{
    Artwork, ContentConfiguration, DownloadConfiguration, IntegrityPolicy, KeyPolicy, MediaSelection,
    StoragePolicy, VariantQualifier,
};

/// The policies a task runs under, and what a new bundle records with them.
#[derive(Debug, Clone)]
pub(crate) struct TaskPolicies {
    pub(crate) key_policy: KeyPolicy,
    pub(crate) integrity: IntegrityPolicy,
    /// The storage policy of a new bundle; `None` when continuing one, which keeps its own.
    pub(crate) storage: Option<StoragePolicy>,
    /// The title of a new bundle.
    pub(crate) title: Option<String>,
    /// The artwork a new bundle keeps.
    pub(crate) artwork: Option<Artwork>,
}

/// The policies of a task with `config` (`None` for a task restored from its bundle) continuing the bundle
/// whose manifest is `manifest` (`None` for a new bundle). `None` when there is neither: a restored task
/// whose bundle is gone.
pub(crate) fn task_policies(
    config: Option<&DownloadConfiguration>,
    manifest: Option<&Manifest>,
) -> Option<TaskPolicies> {
    Some(match (config, manifest) {
        // A bundle keeps the key policy it was made with: mixing clear and encrypted segments in one
        // rendition would make its local playlist wrong.
        (Some(config), Some(m)) => TaskPolicies {
            key_policy: m.key_policy,
            integrity: config.integrity,
            storage: None,
            title: config.title.clone(),
            artwork: None,
        },
        (Some(config), None) => new_bundle_policies(config),
        (None, Some(m)) => TaskPolicies {
            key_policy: m.key_policy,
            integrity: m.integrity,
            storage: None,
            title: None,
            artwork: None,
        },
        (None, None) => return None,
    })
}

/// The policies of a task with `config` that makes a new bundle.
pub(crate) fn new_bundle_policies(config: &DownloadConfiguration) -> TaskPolicies {
    TaskPolicies {
        key_policy: config.keys,
        integrity: config.integrity,
        storage: Some(config.storage),
        title: config.title.clone(),
        artwork: config.artwork.clone(),
    }
}

/// The plan of a new bundle for `asset` downloaded from `url` as `config` asks (a restored task has
/// none): its policies and request, the master playlist (its text and the URL it was read from) when
/// there is one, and the renditions read from their media playlists.
pub(crate) fn bundle_plan(
    asset: &str,
    url: &str,
    policies: &TaskPolicies,
    config: Option<&DownloadConfiguration>,
    master_playlist: Option<(&str, &str)>,
    renditions: &[Built],
) -> BundlePlan {
    let mut info = AssetInfo::new(asset.to_owned()).url(url.to_owned());
    if let Some(title) = &policies.title {
        info = info.title(title.clone());
    }
    let mut plan = BundlePlan::new(info).key_policy(policies.key_policy).integrity(policies.integrity);
    if let Some(storage) = policies.storage {
        plan = plan.policy(storage);
    }
    if let Some(config) = config {
        plan = plan.request(request_of(config));
    }
    if let Some((text, url)) = master_playlist {
        plan = plan.master_playlist(text.to_owned()).master_url(url.to_owned());
    }
    if let Some(artwork) = &policies.artwork {
        plan = plan.artwork(artwork.to_bundle());
    }
    for b in renditions {
        plan = plan.rendition(b.plan.clone());
    }
    plan
}

/// What a new task with `config` records in the bundle of its asset when the bundle exists already: its
/// URL, title, policies and request; and that the download is not cancelled (any more). The key policy
/// stays the bundle's: mixing clear and encrypted segments would make its local playlists wrong.
pub(crate) fn renewal(url: &str, config: &DownloadConfiguration) -> ManifestChanges {
    let mut changes = ManifestChanges::new()
        .url(url)
        .policy(config.storage)
        .integrity(config.integrity)
        .request(request_of(config))
        .cancelled(false);
    if let Some(title) = &config.title {
        changes = changes.title(title.clone());
    }
    changes
}

/// The request a bundle records for `config`: its content configurations as text.
pub(crate) fn request_of(config: &DownloadConfiguration) -> DownloadRequest {
    let contents = config
        .contents()
        .map(|c| {
            ContentRequest::new(
                c.variant_qualifiers.iter().map(ToString::to_string).collect(),
                c.media_selections.iter().map(MediaSelection::to_text).collect(),
            )
        })
        .collect();
    DownloadRequest::new(contents).optimize_auxiliary(config.optimize_auxiliary_contents)
}

/// The configuration a bundle's manifest records (its request, title and policies), to plan a restored
/// task as it was asked for; `None` when it records no request. A request this version cannot read is an
/// error naming what is wrong.
pub(crate) fn configuration_of(manifest: &Manifest) -> Result<Option<DownloadConfiguration>, Error> {
    let Some(request) = &manifest.request else { return Ok(None) };
    let content = |c: &ContentRequest| -> Result<ContentConfiguration, Error> {
        let mut content = ContentConfiguration::new();
        for text in &c.variants {
            content = content.variant_qualifier(text.parse::<VariantQualifier>()?);
        }
        for text in &c.media {
            content = content.media_selection(MediaSelection::from_text(text)?);
        }
        Ok(content)
    };
    let mut contents = request.contents.iter();
    let primary = contents.next().map(content).transpose()?.unwrap_or_default();
    let mut config = DownloadConfiguration::new(primary)
        .keys(manifest.key_policy)
        .integrity(manifest.integrity)
        .optimize_auxiliary_contents(request.optimize_auxiliary);
    for c in contents {
        config = config.auxiliary(content(c)?);
    }
    config = config.storage(manifest.policy);
    if let Some(title) = &manifest.asset.title {
        config = config.title(title.clone());
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Criterion;

    #[test]
    fn a_configuration_recorded_in_a_bundle_reads_back_as_it_was() {
        let config = DownloadConfiguration::new(
            ContentConfiguration::new()
                .variant_qualifier("max-resolution=1280x720,codec=avc1".parse().unwrap())
                .variant_qualifier("lowest".parse().unwrap())
                .media_selection(MediaSelection::audio_language("fr"))
                .media_selection(MediaSelection::subtitles_all()),
        )
        .auxiliary(ContentConfiguration::new().media_selection(MediaSelection::new(
            crate::config::MediaKind::Audio,
            Criterion::Characteristics(vec!["public.accessibility.describes-video".into()]),
        )))
        .optimize_auxiliary_contents(false)
        .integrity(IntegrityPolicy::Tolerant)
        .title("Le film");
        let policies = new_bundle_policies(&config);
        let plan = bundle_plan("film", "https://cdn.example/m.m3u8", &policies, Some(&config), None, &[]);
        let dir = tempfile::tempdir().unwrap();
        let bundle = stowage_bundle::StorageManager::new(dir.path()).create_bundle(plan).unwrap();
        assert_eq!(configuration_of(&bundle.manifest()).unwrap(), Some(config));
    }
}
