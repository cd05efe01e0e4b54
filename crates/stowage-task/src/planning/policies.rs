//! The task's policies as the bundle records them, and back.

use crate::config::KeyPolicy;

pub(crate) fn bundle_key_policy(policy: KeyPolicy) -> stowage_bundle::KeyPolicy {
    match policy {
        KeyPolicy::KeepEncrypted => stowage_bundle::KeyPolicy::KeepEncrypted,
        _ => stowage_bundle::KeyPolicy::Decrypted,
    }
}

pub(crate) fn task_key_policy(policy: stowage_bundle::KeyPolicy) -> KeyPolicy {
    match policy {
        stowage_bundle::KeyPolicy::KeepEncrypted => KeyPolicy::KeepEncrypted,
        _ => KeyPolicy::Decrypt,
    }
}
