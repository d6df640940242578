//! Locks that survive a panic elsewhere.
//!
//! Every mutex in the crate guards data that stays consistent across a panic (each
//! critical section either completes its update or makes none), and no worker thread
//! panics by design; so a poisoned lock is taken as it is rather than turned into a
//! second panic. One helper instead of the same `unwrap_or_else` at every lock.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the data as it is when another thread panicked holding it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the data out of `m`, poisoned or not.
pub(crate) fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|e| e.into_inner())
}
