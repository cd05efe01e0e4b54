//! Poison-tolerant locking: the one place this crate takes its locks' poisoning over.
//!
//! A lock is poisoned when a thread panicked while holding it. Every value this crate guards is changed
//! in steps that each leave it consistent (a push, an insert, a counter bump, a field set whole), so a
//! poisoned lock still holds a usable value, and refusing it would turn one panic into many. Where a
//! guarded value needs more than that, its own comment says why the takeover is still safe.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking a poisoned lock over.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
