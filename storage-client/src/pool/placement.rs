//! Which nodes get an object's copies, and in which order its replicas are read.

use std::collections::HashSet;

use strata_clock::shuffle;

use super::{NodePool, Placement};
use crate::error::{Result, StorageError};

impl NodePool {
    /// The node for the next copy of an object already held (or being written) by `holding`:
    /// an untried node, healthy before resting (unless `healthy_only`), in a zone that holds no
    /// copy yet before one that does, and at random among equals.
    pub(super) fn pick(
        &self,
        tried: &HashSet<usize>,
        holding: &[usize],
        healthy_only: bool,
    ) -> Option<usize> {
        let zones: HashSet<&str> = holding
            .iter()
            .filter_map(|&i| self.nodes[i].zone.as_deref())
            .collect();
        let mut candidates: Vec<(bool, usize)> = (0..self.nodes.len())
            .filter(|i| !tried.contains(i))
            .map(|i| (self.is_healthy(i), i))
            .filter(|&(healthy, _)| healthy || !healthy_only)
            .collect();
        shuffle(self.rng.as_ref(), &mut candidates);
        candidates
            .into_iter()
            .min_by_key(|&(healthy, i)| {
                let zone_taken = self.nodes[i]
                    .zone
                    .as_deref()
                    .is_some_and(|z| zones.contains(z));
                (!healthy, zone_taken)
            })
            .map(|(_, i)| i)
    }

    /// Counts an object whose copies span fewer zones than they could.
    pub(super) fn check_zone_spread(&self, written: &[usize], path: &object_store::path::Path) {
        if self.zone_count == 0 {
            return;
        }
        let spread = written
            .iter()
            .filter_map(|&i| self.nodes[i].zone.as_deref())
            .collect::<HashSet<_>>()
            .len();
        if spread < self.replicas.min(self.zone_count) {
            self.metrics.placements_short_of_zones.inc();
            // Rare (nodes of the other zones were failing or stuck when it was placed) and
            // worth an operator's look: said at info, with the path.
            tracing::info!(%path, zones = spread, "object placed in fewer zones than it could be");
        }
    }

    /// Replica indexes of a placement in read order: healthy before resting, this process's
    /// zone before others, at random among equals.
    pub(super) fn read_order(&self, placement: &Placement) -> Result<Vec<usize>> {
        let mut indexes = placement
            .nodes
            .iter()
            .map(|id| {
                self.index_of(id)
                    .ok_or_else(|| StorageError::UnknownNode(id.0.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        shuffle(self.rng.as_ref(), &mut indexes);
        // Cached: each key takes a lock and the node's clock.
        indexes.sort_by_cached_key(|&i| (!self.is_healthy(i), !self.in_local_zone(i)));
        Ok(indexes)
    }

    fn in_local_zone(&self, i: usize) -> bool {
        self.local_zone.is_some() && self.nodes[i].zone == self.local_zone
    }
}
