//! Places counted per key under a cap: what one client, one job or the whole
//! process may hold open at once (progress streams, uploads in progress).
//! A [`Place`] is given back when dropped, however its holder ends: a
//! client gone, a request timed out, a handler that returned early.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// The places held now, per key.
#[derive(Debug)]
pub struct Places<K>(Arc<Mutex<HashMap<K, usize>>>);

impl<K> Default for Places<K> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<K> Clone for Places<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// One place held under a key; dropping it frees it.
#[derive(Debug)]
pub struct Place<K: Hash + Eq> {
    places: Places<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> Places<K> {
    /// A place under `key`, unless `cap` are held there already.
    pub fn take(&self, key: K, cap: usize) -> Option<Place<K>> {
        let mut held = self.0.lock().expect("not poisoned");
        let count = held.entry(key.clone()).or_default();
        if *count >= cap {
            if *count == 0 {
                held.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(Place {
            places: self.clone(),
            key,
        })
    }
}

impl<K: Hash + Eq> Drop for Place<K> {
    fn drop(&mut self) {
        let mut held = self.places.0.lock().expect("not poisoned");
        // A key left with none is forgotten, so the map holds only what is
        // open and cannot grow with every client ever seen.
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_and_a_dropped_place_frees_one() {
        let places = Places::default();
        let first = places.take("a", 2).unwrap();
        let _second = places.take("a", 2).unwrap();
        assert!(places.take("a", 2).is_none());
        assert!(
            places.take("b", 2).is_some(),
            "another key has its own places"
        );
        drop(first);
        assert!(places.take("a", 2).is_some());
    }

    #[test]
    fn keys_with_no_place_held_are_forgotten() {
        let places = Places::default();
        drop(places.take("a", 1));
        assert!(places.take("b", 0).is_none());
        assert!(places.0.lock().unwrap().is_empty());
    }
}
