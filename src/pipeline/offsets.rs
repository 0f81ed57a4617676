//! Per-partition "done up to" tracking: an offset may be committed only when it and every
//! offset before it (of those consumed) has been fully handled (all outputs acknowledged).
//! Stored offsets never skip a gap.

use std::collections::{HashMap, VecDeque};

pub type Partition = i32;
pub type Offset = i64;

#[derive(Default, Debug)]
struct PartitionState {
    /// Consumed offsets in order, with whether each is done.
    in_flight: VecDeque<(Offset, bool)>,
    /// Next offset to commit (last contiguous done + 1), if anything completed.
    committable: Option<Offset>,
}

/// Tracks in-flight offsets for every assigned partition of one topic.
#[derive(Default, Debug)]
pub struct OffsetTracker {
    partitions: HashMap<Partition, PartitionState>,
}

impl OffsetTracker {
    /// Registers a consumed offset (offsets of one partition arrive in increasing order).
    pub fn start(&mut self, partition: Partition, offset: Offset) {
        self.partitions
            .entry(partition)
            .or_default()
            .in_flight
            .push_back((offset, false));
    }

    /// Marks an offset done; returns the new committable offset of the partition if it moved.
    pub fn finish(&mut self, partition: Partition, offset: Offset) -> Option<Offset> {
        let state = self.partitions.get_mut(&partition)?;
        let pos = state
            .in_flight
            .binary_search_by_key(&offset, |(o, _)| *o)
            .ok()?;
        state.in_flight[pos].1 = true;
        let mut moved = None;
        while let Some(&(front, true)) = state.in_flight.front() {
            state.in_flight.pop_front();
            moved = Some(front + 1);
        }
        if let Some(next) = moved {
            state.committable = Some(next);
        }
        moved
    }

    /// The committable offset of a partition.
    pub fn committable(&self, partition: Partition) -> Option<Offset> {
        self.partitions
            .get(&partition)
            .and_then(|state| state.committable)
    }

    /// Number of offsets not yet done, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions
            .values()
            .map(|state| state.in_flight.len())
            .sum()
    }

    pub fn in_flight_of(&self, partition: Partition) -> usize {
        self.partitions
            .get(&partition)
            .map_or(0, |state| state.in_flight.len())
    }

    /// Forgets a revoked partition.
    pub fn remove(&mut self, partition: Partition) {
        self.partitions.remove(&partition);
    }

    pub fn partitions(&self) -> impl Iterator<Item = Partition> + '_ {
        self.partitions.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_skips_a_gap() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..15 {
            tracker.start(0, offset);
        }
        assert_eq!(tracker.finish(0, 12), None);
        assert_eq!(tracker.committable(0), None);
        assert_eq!(tracker.finish(0, 10), Some(11));
        assert_eq!(tracker.finish(0, 11), Some(13));
        assert_eq!(tracker.in_flight(), 2);
        assert_eq!(tracker.finish(0, 14), None);
        assert_eq!(tracker.finish(0, 13), Some(15));
        assert_eq!(tracker.in_flight(), 0);
        assert_eq!(tracker.finish(0, 99), None);
        assert_eq!(tracker.finish(7, 1), None);
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = OffsetTracker::default();
        tracker.start(0, 0);
        tracker.start(1, 0);
        assert_eq!(tracker.finish(1, 0), Some(1));
        assert_eq!(tracker.committable(0), None);
        tracker.remove(1);
        assert_eq!(tracker.committable(1), None);
    }
}
