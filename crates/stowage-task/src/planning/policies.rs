//! The task's policies: where they come from (the configuration, or the bundle being continued), how the
//! bundle records them, and the plan of a new bundle.

use stowage_bundle::{AssetInfo, BundlePlan, Manifest};

use super::Built;
use crate::config::{Artwork, DownloadConfiguration, IntegrityPolicy, KeyPolicy, Priority, StoragePolicy};

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
            key_policy: task_key_policy(m.key_policy),
            integrity: config.integrity,
            storage: None,
            title: config.title.clone(),
            artwork: None,
        },
        (Some(config), None) => TaskPolicies {
            key_policy: config.keys,
            integrity: config.integrity,
            storage: Some(config.storage),
            title: config.title.clone(),
            artwork: config.artwork.clone(),
        },
        (None, Some(m)) => TaskPolicies {
            key_policy: task_key_policy(m.key_policy),
            integrity: task_integrity(m.integrity),
            storage: None,
            title: None,
            artwork: None,
        },
        (None, None) => return None,
    })
}

/// The plan of a new bundle for `asset` downloaded from `url`: its policies, the master playlist when
/// there is one, and the renditions read from their media playlists.
pub(crate) fn bundle_plan(
    asset: &str,
    url: &str,
    policies: &TaskPolicies,
    master_playlist: Option<&str>,
    renditions: &[Built],
) -> BundlePlan {
    let mut info = AssetInfo::new(asset.to_owned()).url(url.to_owned());
    if let Some(title) = &policies.title {
        info = info.title(title.clone());
    }
    let mut plan = BundlePlan::new(info)
        .key_policy(bundle_key_policy(policies.key_policy))
        .integrity(bundle_integrity(policies.integrity));
    if let Some(storage) = policies.storage {
        let mut policy = stowage_bundle::StoragePolicy::default();
        if let Some(at) = storage.expires {
            policy = policy.expires(at);
        }
        if storage.priority == Priority::Important {
            policy = policy.priority(stowage_bundle::Priority::Important);
        }
        plan = plan.policy(policy);
    }
    if let Some(text) = master_playlist {
        plan = plan.master_playlist(text.to_owned());
    }
    if let Some(artwork) = &policies.artwork {
        plan = plan.artwork(artwork.to_bundle());
    }
    for b in renditions {
        plan = plan.rendition(b.plan.clone());
    }
    plan
}

fn bundle_key_policy(policy: KeyPolicy) -> stowage_bundle::KeyPolicy {
    match policy {
        KeyPolicy::KeepEncrypted => stowage_bundle::KeyPolicy::KeepEncrypted,
        _ => stowage_bundle::KeyPolicy::Decrypted,
    }
}

fn task_key_policy(policy: stowage_bundle::KeyPolicy) -> KeyPolicy {
    match policy {
        stowage_bundle::KeyPolicy::KeepEncrypted => KeyPolicy::KeepEncrypted,
        _ => KeyPolicy::Decrypt,
    }
}

fn bundle_integrity(policy: IntegrityPolicy) -> stowage_bundle::IntegrityPolicy {
    match policy {
        IntegrityPolicy::Tolerant => stowage_bundle::IntegrityPolicy::Tolerant,
        _ => stowage_bundle::IntegrityPolicy::Strict,
    }
}

fn task_integrity(policy: stowage_bundle::IntegrityPolicy) -> IntegrityPolicy {
    match policy {
        stowage_bundle::IntegrityPolicy::Tolerant => IntegrityPolicy::Tolerant,
        _ => IntegrityPolicy::Strict,
    }
}
