//! A proxy's cache of recently read segment objects, so consumers reading the same hot data
//! (typically the newest segments, just committed) cost one GET between them, not one each.
//!
//! Objects are immutable and never reused under the same name, so a cached copy is never
//! stale. Small objects (at most `max_object_bytes`, which covers every freshly flushed
//! segment) are fetched whole with one GET and served from memory afterwards; larger ones
//! (compacted segments) keep only their decoded footer, saving the footer GET of every read.
//! Least recently used entries go first once `capacity_bytes` is exceeded.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strata_config::{Config, ProxySection};
use strata_format::Footer;

/// Cache sizes.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Bytes of object data and footers kept in all.
    pub capacity_bytes: u64,
    /// Objects up to this size are cached whole.
    pub max_object_bytes: u64,
}

impl From<&ProxySection> for CacheConfig {
    fn from(s: &ProxySection) -> Self {
        Self {
            capacity_bytes: s.cache_bytes,
            max_object_bytes: s.cache_max_object_bytes,
        }
    }
}

/// The shipped `[proxy]` settings.
impl Default for CacheConfig {
    fn default() -> Self {
        Self::from(&Config::shipped().proxy)
    }
}

/// Hit and miss counts, for metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Reads served without fetching the object's footer or data.
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
    /// Flush objects fetched whole for tail reads, each filling the cache with every
    /// partition's section.
    pub object_loads: AtomicU64,
    /// Newly committed segments fetched before any reader asked (see
    /// `LogReader::prefetch`).
    pub prefetches: AtomicU64,
}

/// One cached object: its footer, and its bytes when small enough.
#[derive(Debug, Clone)]
pub struct Cached {
    pub footer: Arc<Footer>,
    pub data: Option<Bytes>,
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    cost: u64,
    tick: u64,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    /// tick → key, oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: u64,
}

#[derive(Debug)]
pub struct ReadCache {
    config: CacheConfig,
    lru: Mutex<Lru>,
    pub stats: CacheStats,
}

/// What an entry costs against the capacity: its data plus the decoded index.
fn cost(cached: &Cached) -> u64 {
    let footer = 128 + cached.footer.index.len() as u64 * 24;
    footer + cached.data.as_ref().map_or(0, |d| d.len() as u64)
}

impl ReadCache {
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            lru: Mutex::default(),
            stats: CacheStats::default(),
        }
    }

    pub fn config(&self) -> CacheConfig {
        self.config
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.lru.lock().expect("read cache poisoned").bytes
    }

    /// The cached object at `path`, marking it recently used.
    pub fn get(&self, path: &str) -> Option<Cached> {
        let mut lru = self.lru.lock().expect("read cache poisoned");
        lru.tick += 1;
        let tick = lru.tick;
        let Some(entry) = lru.entries.get_mut(path) else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let old = std::mem::replace(&mut entry.tick, tick);
        let cached = entry.cached.clone();
        lru.order.remove(&old);
        lru.order.insert(tick, path.to_owned());
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some(cached)
    }

    /// Whether `path` is cached, without counting a hit or a miss or marking it used.
    pub fn contains(&self, path: &str) -> bool {
        self.lru
            .lock()
            .expect("read cache poisoned")
            .entries
            .contains_key(path)
    }

    /// Keeps `cached` for `path`, evicting the least recently used entries beyond capacity.
    pub fn insert(&self, path: &str, cached: Cached) {
        let cost = cost(&cached);
        if cost > self.config.capacity_bytes {
            return;
        }
        let mut lru = self.lru.lock().expect("read cache poisoned");
        lru.tick += 1;
        let tick = lru.tick;
        if let Some(old) = lru
            .entries
            .insert(path.to_owned(), Entry { cached, cost, tick })
        {
            lru.order.remove(&old.tick);
            lru.bytes -= old.cost;
        }
        lru.order.insert(tick, path.to_owned());
        lru.bytes += cost;
        while lru.bytes > self.config.capacity_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(gone) = lru.entries.remove(&oldest) {
                lru.bytes -= gone.cost;
                self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footer() -> Arc<Footer> {
        Arc::new(Footer {
            base_offset: 0,
            next_offset: 1,
            min_timestamp: 0,
            max_timestamp: 0,
            data_len: 0,
            batch_count: 1,
            record_count: 1,
            index: Vec::new(),
        })
    }

    fn object(len: usize) -> Cached {
        Cached {
            footer: footer(),
            data: Some(Bytes::from(vec![0u8; len])),
        }
    }

    #[test]
    fn evicts_the_least_recently_used_first() {
        let cache = ReadCache::new(CacheConfig {
            capacity_bytes: 3 * (1000 + 128),
            max_object_bytes: 1000,
        });
        cache.insert("a", object(1000));
        cache.insert("b", object(1000));
        cache.insert("c", object(1000));
        assert!(cache.get("a").is_some()); // a is now the most recent
        cache.insert("d", object(1000));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some() && cache.get("d").is_some());
        assert_eq!(cache.bytes(), 3 * 1128);
        assert_eq!(cache.stats.evictions.load(Ordering::Relaxed), 1);
        assert_eq!(cache.stats.misses.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn replacing_an_entry_keeps_the_byte_count_right() {
        let cache = ReadCache::new(CacheConfig::default());
        cache.insert("a", object(10));
        cache.insert("a", object(20));
        assert_eq!(cache.bytes(), 148);
        let too_big = ReadCache::new(CacheConfig {
            capacity_bytes: 100,
            max_object_bytes: 100,
        });
        too_big.insert("x", object(1000));
        assert!(too_big.get("x").is_none());
    }
}
