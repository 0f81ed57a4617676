//! Compact lookup structures for the snapshot: string keys in one arena, IP prefixes by
//! length. Values are "id lists": a single indicator id inline, or (high bit set) an index
//! into a shared list of multi-id postings.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::{HashMap, HashTable};

type Hasher = foldhash::fast::FixedState;

const MULTI: u32 = 1 << 31;

/// Id lists shared by every index of one snapshot.
#[derive(Default, Debug)]
pub struct Postings {
    multi: Vec<Vec<u32>>,
}

impl Postings {
    /// Adds `id` to the list held in `slot` (which may be empty: `u32::MAX`).
    pub fn add(&mut self, slot: &mut u32, id: u32) {
        if *slot == u32::MAX {
            *slot = id;
        } else if *slot & MULTI != 0 {
            let list = &mut self.multi[(*slot & !MULTI) as usize];
            if list.last() != Some(&id) {
                list.push(id);
            }
        } else if *slot != id {
            self.multi.push(vec![*slot, id]);
            *slot = (self.multi.len() - 1) as u32 | MULTI;
        }
    }

    /// The ids held in `slot`.
    #[inline]
    pub fn ids<'a>(&'a self, slot: &'a u32) -> &'a [u32] {
        if *slot & MULTI != 0 {
            &self.multi[(*slot & !MULTI) as usize]
        } else {
            std::slice::from_ref(slot)
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.multi.capacity() * 24
            + self
                .multi
                .iter()
                .map(|list| list.capacity() * 4)
                .sum::<usize>()
    }
}

/// String keys → id lists, keys stored once in an arena (no allocation per key).
#[derive(Default)]
pub struct StrIndex {
    table: HashTable<u32>,
    entries: Vec<(u32, u32, u32)>,
    arena: String,
}

impl StrIndex {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn key(&self, entry: u32) -> &str {
        let (start, len, _) = self.entries[entry as usize];
        &self.arena[start as usize..(start + len) as usize]
    }

    pub fn insert(&mut self, key: &str, id: u32, postings: &mut Postings) {
        let hash = Hasher::default().hash_one(key);
        let found = self
            .table
            .find(hash, |&entry| self.key(entry) == key)
            .copied();
        match found {
            Some(entry) => postings.add(&mut self.entries[entry as usize].2, id),
            None => {
                let start = self.arena.len() as u32;
                self.arena.push_str(key);
                let mut slot = u32::MAX;
                postings.add(&mut slot, id);
                self.entries.push((start, key.len() as u32, slot));
                let entry = (self.entries.len() - 1) as u32;
                let Self {
                    table,
                    entries,
                    arena,
                } = self;
                table.insert_unique(hash, entry, |&other| {
                    let (start, len, _) = entries[other as usize];
                    Hasher::default().hash_one(&arena[start as usize..(start + len) as usize])
                });
            }
        }
    }

    #[inline]
    pub fn get(&self, key: &str) -> Option<&u32> {
        if self.entries.is_empty() {
            return None;
        }
        let hash = Hasher::default().hash_one(key);
        let entry = self.table.find(hash, |&entry| self.key(entry) == key)?;
        Some(&self.entries[*entry as usize].2)
    }

    pub fn keys(&self) -> impl Iterator<Item = (&str, &u32)> {
        self.entries.iter().map(|(start, len, slot)| {
            (&self.arena[*start as usize..(*start + *len) as usize], slot)
        })
    }

    pub fn shrink(&mut self) {
        self.entries.shrink_to_fit();
        self.arena.shrink_to_fit();
        let entries = &self.entries;
        let arena = &self.arena;
        self.table.shrink_to_fit(|&entry| {
            let (start, len, _) = entries[entry as usize];
            Hasher::default().hash_one(&arena[start as usize..(start + len) as usize])
        });
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * 5 + self.entries.capacity() * 12 + self.arena.capacity()
    }
}

/// IP networks by prefix length: exact addresses are the /32 and /128 entries.
pub struct PrefixMap<V> {
    v4: Vec<(u8, HashMap<u32, V, Hasher>)>,
    v6: Vec<(u8, HashMap<u128, V, Hasher>)>,
    /// Per IPv4 prefix length ≥ 16 (same order as `v4`): one bit per /16 that holds a
    /// network of that length, so most misses cost a bit test instead of a hash probe.
    v4_present: Vec<Option<Box<[u64]>>>,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Vec::new(),
            v6: Vec::new(),
            v4_present: Vec::new(),
        }
    }
}

impl<V> PrefixMap<V> {
    /// The value slot for `network/len` (network bits already masked), created with `init`.
    pub fn slot(&mut self, network: IpAddr, len: u8, init: impl FnOnce() -> V) -> &mut V {
        match network {
            IpAddr::V4(v4) => {
                let pos = match self.v4.iter().position(|(l, _)| *l == len) {
                    Some(pos) => pos,
                    None => {
                        self.v4.push((len, HashMap::default()));
                        self.v4_present
                            .push((len >= 16).then(|| vec![0u64; 1024].into_boxed_slice()));
                        // Longest prefix first: the most specific match is reported first.
                        let mut paired: Vec<_> = std::mem::take(&mut self.v4)
                            .into_iter()
                            .zip(std::mem::take(&mut self.v4_present))
                            .collect();
                        paired.sort_by_key(|(entry, _)| std::cmp::Reverse(entry.0));
                        (self.v4, self.v4_present) = paired.into_iter().unzip();
                        self.v4.iter().position(|(l, _)| *l == len).unwrap_or(0)
                    }
                };
                let bits = u32::from(v4);
                if let Some(present) = &mut self.v4_present[pos] {
                    let slash16 = (bits >> 16) as usize;
                    present[slash16 / 64] |= 1 << (slash16 % 64);
                }
                self.v4[pos].1.entry(bits).or_insert_with(init)
            }
            IpAddr::V6(v6) => {
                let pos = match self.v6.iter().position(|(l, _)| *l == len) {
                    Some(pos) => pos,
                    None => {
                        self.v6.push((len, HashMap::default()));
                        self.v6.sort_by_key(|entry| std::cmp::Reverse(entry.0));
                        self.v6.iter().position(|(l, _)| *l == len).unwrap_or(0)
                    }
                };
                self.v6[pos].1.entry(u128::from(v6)).or_insert_with(init)
            }
        }
    }

    /// Calls `found(prefix_len, value)` for every network containing `addr`, longest first.
    #[inline]
    pub fn for_each_containing(&self, addr: IpAddr, mut found: impl FnMut(u8, &V)) {
        match addr {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let slash16 = (bits >> 16) as usize;
                for ((len, map), present) in self.v4.iter().zip(&self.v4_present) {
                    if let Some(present) = present {
                        if present[slash16 / 64] & (1 << (slash16 % 64)) == 0 {
                            continue;
                        }
                    }
                    if let Some(value) = map.get(&crate::pipeline::normalize::mask_u32(bits, *len))
                    {
                        found(*len, value);
                    }
                }
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                for (len, map) in &self.v6 {
                    if let Some(value) = map.get(&crate::pipeline::normalize::mask_u128(bits, *len))
                    {
                        found(*len, value);
                    }
                }
            }
        }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let mut hit = false;
        self.for_each_containing(addr, |_, _| hit = true);
        hit
    }

    pub fn len(&self) -> usize {
        self.v4.iter().map(|(_, map)| map.len()).sum::<usize>()
            + self.v6.iter().map(|(_, map)| map.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn shrink(&mut self) {
        for (_, map) in &mut self.v4 {
            map.shrink_to_fit();
        }
        for (_, map) in &mut self.v6 {
            map.shrink_to_fit();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<V>();
        self.v4
            .iter()
            .map(|(_, map)| map.capacity() * (5 + entry))
            .sum::<usize>()
            + self
                .v6
                .iter()
                .map(|(_, map)| map.capacity() * (17 + entry))
                .sum::<usize>()
            + self.v4_present.iter().flatten().count() * 8192
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_index_multi() {
        let mut postings = Postings::default();
        let mut index = StrIndex::default();
        index.insert("evil.com", 1, &mut postings);
        index.insert("good.com", 2, &mut postings);
        index.insert("evil.com", 3, &mut postings);
        index.insert("evil.com", 3, &mut postings);
        assert_eq!(postings.ids(index.get("evil.com").unwrap()), &[1, 3]);
        assert_eq!(postings.ids(index.get("good.com").unwrap()), &[2]);
        assert!(index.get("evil.co").is_none());
        for n in 0..10_000u32 {
            index.insert(&format!("k{n}"), n, &mut postings);
        }
        index.shrink();
        assert_eq!(postings.ids(index.get("k9999").unwrap()), &[9999]);
        assert_eq!(index.len(), 10_002);
    }

    #[test]
    fn prefix_map_edges() {
        let mut map: PrefixMap<u32> = PrefixMap::default();
        *map.slot("10.0.0.0".parse().unwrap(), 8, || 0) = 1;
        *map.slot("10.1.2.3".parse().unwrap(), 32, || 0) = 2;
        *map.slot("2001:db8::".parse().unwrap(), 32, || 0) = 3;
        let hits = |addr: &str| {
            let mut out = Vec::new();
            map.for_each_containing(addr.parse().unwrap(), |_, v| out.push(*v));
            out
        };
        assert_eq!(hits("10.1.2.3"), [2, 1]);
        assert_eq!(hits("10.255.255.255"), [1]);
        assert_eq!(hits("11.0.0.0"), Vec::<u32>::new());
        assert_eq!(hits("9.255.255.255"), Vec::<u32>::new());
        assert_eq!(hits("2001:db8:ffff::1"), [3]);
        assert_eq!(hits("2001:db9::1"), Vec::<u32>::new());
    }
}
