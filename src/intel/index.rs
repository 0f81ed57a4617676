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

/// A split-block Bloom filter over 64-bit key hashes: each key sets one bit in each of the
/// eight 32-bit words of one 32-byte block, so a lookup reads a single cache line. Sized at
/// 16 bits per key (≈0.1% false positives), a filter over the 1M-indicator snapshot is ~2 MB
/// and mostly stays in cache, where the hash tables it guards (~60 MB) do not: almost every
/// observable is not an indicator, and the filter answers those without a DRAM miss.
/// No false negatives: a key that was added is always reported as maybe present.
pub struct Filter {
    blocks: Box<[Block]>,
}

#[derive(Clone, Copy, Default)]
#[repr(align(32))]
struct Block([u32; 8]);

/// Odd multipliers that pick a bit in each word (from the split-block Bloom filter of Parquet).
const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// Bits of filter per key.
const FILTER_BITS_PER_KEY: usize = 16;

impl Filter {
    /// An empty filter sized for `keys` keys.
    pub fn with_capacity(keys: usize) -> Self {
        let blocks = (keys * FILTER_BITS_PER_KEY).div_ceil(256).max(1);
        Filter {
            blocks: vec![Block::default(); blocks].into_boxed_slice(),
        }
    }

    /// The block and the per-word bit masks of a key hash.
    #[inline]
    fn locate(&self, hash: u64) -> (usize, [u32; 8]) {
        // Remix: the high half picks the block, the low half the bits.
        let hash = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let low = hash as u32;
        let masks = SALT.map(|salt| 1u32 << (low.wrapping_mul(salt) >> 27));
        (self.block_of_mixed(hash), masks)
    }

    /// The block of a key hash (what `locate` gives, without the masks).
    #[inline]
    fn block_of(&self, hash: u64) -> usize {
        self.block_of_mixed(hash.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    #[inline]
    fn block_of_mixed(&self, mixed: u64) -> usize {
        (((mixed >> 32) * self.blocks.len() as u64) >> 32) as usize
    }

    pub fn insert(&mut self, hash: u64) {
        let (block, masks) = self.locate(hash);
        for (word, mask) in self.blocks[block].0.iter_mut().zip(masks) {
            *word |= mask;
        }
    }

    /// The filter over `keys` key hashes, or `None` below `min_keys` keys.
    pub fn build(keys: usize, min_keys: usize, hashes: impl Iterator<Item = u64>) -> Option<Self> {
        (keys >= min_keys).then(|| {
            let mut filter = Filter::with_capacity(keys);
            hashes.for_each(|hash| filter.insert(hash));
            filter
        })
    }

    /// False when the key was certainly never inserted.
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        let (block, masks) = self.locate(hash);
        let words = &self.blocks[block].0;
        let mut missing = 0;
        for (word, mask) in words.iter().zip(masks) {
            missing |= mask & !word;
        }
        missing == 0
    }

    /// Asks the CPU to start loading the block of a key hash (see [`StrIndex::prefetch`]).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        prefetch(&self.blocks[self.block_of(hash)]);
    }

    pub fn heap_bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<Block>()
    }
}

/// A hint to pull the cache line of `value` into the cache; no effect on the program's state.
#[inline]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache hierarchy: it never faults and has no
    // architectural effect (no read is performed as far as the program can observe), so
    // any address is fine (the pointer of an empty slice is dangling, and still harmless).
    // SSE is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Indexes with fewer keys than this get no filter: their tables stay in cache anyway.
const MIN_FILTERED_KEYS: usize = 4096;

/// IP prefix levels with at least this many networks get a filter all the same. Such a level
/// is probed for every address of a /16 that holds one of its networks: with a few hundred
/// networks that is thousands of probes a second, spread over a table the rest of the work
/// keeps pushing out of cache, where its filter (16 bits a network) stays in.
const MIN_FILTERED_NETWORKS: usize = 256;

/// The hash every [`StrIndex`] files `key` under: computed once per observable, it serves
/// the prefetch and every index the observable is looked up in.
#[inline]
pub fn key_hash(key: &str) -> u64 {
    Hasher::default().hash_one(key)
}

/// String keys → id lists, keys stored once in an arena (no allocation per key).
#[derive(Default)]
pub struct StrIndex {
    table: HashTable<u32>,
    entries: Vec<(u32, u32, u32)>,
    arena: String,
    /// Built by `shrink` for large indexes; kept up to date by later inserts.
    filter: Option<Filter>,
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
        let hash = key_hash(key);
        let found = self
            .table
            .find(hash, |&entry| self.key(entry) == key)
            .copied();
        match found {
            Some(entry) => postings.add(&mut self.entries[entry as usize].2, id),
            None => {
                if let Some(filter) = &mut self.filter {
                    filter.insert(hash);
                }
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
                    ..
                } = self;
                table.insert_unique(hash, entry, |&other| {
                    let (start, len, _) = entries[other as usize];
                    key_hash(&arena[start as usize..(start + len) as usize])
                });
            }
        }
    }

    #[inline]
    pub fn get(&self, key: &str) -> Option<&u32> {
        self.get_hashed(key, key_hash(key))
    }

    /// `get`, with `hash` = [`key_hash`]`(key)` already computed.
    #[inline]
    pub fn get_hashed(&self, key: &str, hash: u64) -> Option<&u32> {
        if self.entries.is_empty() {
            return None;
        }
        if let Some(filter) = &self.filter {
            if !filter.may_contain(hash) {
                return None;
            }
        }
        let entry = self.table.find(hash, |&entry| self.key(entry) == key)?;
        Some(&self.entries[*entry as usize].2)
    }

    /// Starts loading the filter block that `get(key)` will read, so that a lookup made a
    /// little later finds it in cache.
    #[inline]
    pub fn prefetch(&self, key: &str) {
        self.prefetch_hashed(key_hash(key));
    }

    /// `prefetch` of a key whose [`key_hash`] is `hash`.
    #[inline]
    pub fn prefetch_hashed(&self, hash: u64) {
        if let Some(filter) = &self.filter {
            filter.prefetch(hash);
        }
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
            key_hash(&arena[start as usize..(start + len) as usize])
        });
        self.filter = Filter::build(
            self.entries.len(),
            MIN_FILTERED_KEYS,
            self.keys().map(|(key, _)| key_hash(key)),
        );
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * 5
            + self.entries.capacity() * 12
            + self.arena.capacity()
            + self.filter.as_ref().map_or(0, Filter::heap_bytes)
    }
}

/// IP networks by prefix length: exact addresses are the /32 and /128 entries.
pub struct PrefixMap<V> {
    /// Longest prefix first: the most specific match is reported first.
    v4: Vec<Level<u32, V>>,
    /// One bit per /16 that holds an IPv4 network of a length from 16 to 31: most addresses
    /// are in none, and one test then skips those levels (instead of one per level).
    v4_networks: Box<[u64]>,
    v6: Vec<Level<u128, V>>,
}

/// The networks of one prefix length, and the tests that rule most misses out before the
/// hash probe.
struct Level<K, V> {
    len: u8,
    map: HashMap<K, V, Hasher>,
    /// IPv4 lengths ≥ 16: one bit per /16 that holds a network of that length.
    present: Option<Box<[u64]>>,
    /// The filter of a level of [`MIN_FILTERED_NETWORKS`] networks or more (built by
    /// `shrink`; later inserts add to it). For a large IPv4 map the /16 bits are all set, the
    /// filter is not.
    filter: Option<Filter>,
}

impl<K: Copy + Eq + std::hash::Hash, V> Level<K, V> {
    fn new(len: u8, with_present: bool) -> Self {
        Level {
            len,
            map: HashMap::default(),
            present: with_present.then(|| vec![0u64; 1024].into_boxed_slice()),
            filter: None,
        }
    }

    fn slot(&mut self, network: K, init: impl FnOnce() -> V) -> &mut V {
        if let Some(filter) = &mut self.filter {
            filter.insert(int_hash(network));
        }
        self.map.entry(network).or_insert_with(init)
    }

    #[inline]
    fn get(&self, network: K) -> Option<&V> {
        if let Some(filter) = &self.filter {
            if !filter.may_contain(int_hash(network)) {
                return None;
            }
        }
        self.map.get(&network)
    }

    /// Whether the level is large enough for its filter to be worth prefetching.
    #[inline]
    fn is_large(&self) -> bool {
        self.map.len() >= MIN_FILTERED_KEYS
    }

    #[inline]
    fn prefetch(&self, network: K) {
        if let Some(filter) = &self.filter {
            filter.prefetch(int_hash(network));
        }
    }

    fn shrink(&mut self) {
        self.map.shrink_to_fit();
        self.filter = Filter::build(
            self.map.len(),
            MIN_FILTERED_NETWORKS,
            self.map.keys().map(|key| int_hash(*key)),
        );
    }

    /// `slot_bytes`: the table's bytes per slot besides the value (key and control byte).
    fn heap_bytes(&self, slot_bytes: usize) -> usize {
        self.map.capacity() * (slot_bytes + std::mem::size_of::<V>())
            + self.present.as_ref().map_or(0, |_| 8192)
            + self.filter.as_ref().map_or(0, Filter::heap_bytes)
    }
}

/// The position of the `len` level, created (in longest-first order) if missing.
fn level_position<K: Copy + Eq + std::hash::Hash, V>(
    levels: &mut Vec<Level<K, V>>,
    len: u8,
    with_present: bool,
) -> usize {
    if let Some(pos) = levels.iter().position(|level| level.len == len) {
        return pos;
    }
    levels.push(Level::new(len, with_present));
    levels.sort_by_key(|level| std::cmp::Reverse(level.len));
    levels
        .iter()
        .position(|level| level.len == len)
        .unwrap_or(0)
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Vec::new(),
            v4_networks: vec![0u64; 1024].into_boxed_slice(),
            v6: Vec::new(),
        }
    }
}

#[inline]
fn int_hash<K: std::hash::Hash>(key: K) -> u64 {
    Hasher::default().hash_one(key)
}

impl<V> PrefixMap<V> {
    /// The value slot for `network/len` (network bits already masked), created with `init`.
    pub fn slot(&mut self, network: IpAddr, len: u8, init: impl FnOnce() -> V) -> &mut V {
        match network {
            IpAddr::V4(v4) => {
                let pos = level_position(&mut self.v4, len, len >= 16);
                let level = &mut self.v4[pos];
                let bits = u32::from(v4);
                if let Some(present) = &mut level.present {
                    let slash16 = (bits >> 16) as usize;
                    present[slash16 / 64] |= 1 << (slash16 % 64);
                    if len < 32 {
                        self.v4_networks[slash16 / 64] |= 1 << (slash16 % 64);
                    }
                }
                level.slot(bits, init)
            }
            IpAddr::V6(v6) => {
                let pos = level_position(&mut self.v6, len, false);
                self.v6[pos].slot(u128::from(v6), init)
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
                let in_networks = self.v4_networks[slash16 / 64] & (1 << (slash16 % 64)) != 0;
                for level in &self.v4 {
                    if !in_networks && (16..32).contains(&level.len) {
                        continue;
                    }
                    if let Some(present) = &level.present {
                        if present[slash16 / 64] & (1 << (slash16 % 64)) == 0 {
                            continue;
                        }
                    }
                    let network = crate::pipeline::normalize::mask_u32(bits, level.len);
                    if let Some(value) = level.get(network) {
                        found(level.len, value);
                    }
                }
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                for level in &self.v6 {
                    let network = crate::pipeline::normalize::mask_u128(bits, level.len);
                    if let Some(value) = level.get(network) {
                        found(level.len, value);
                    }
                }
            }
        }
    }

    /// Like [`StrIndex::prefetch`], for the filters `for_each_containing(addr)` may read.
    #[inline]
    pub fn prefetch(&self, addr: IpAddr) {
        match addr {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let slash16 = (bits >> 16) as usize;
                prefetch(&self.v4_networks[slash16 / 64]);
                // Only the large levels' filters are worth it (the small ones stay in cache).
                for level in self.v4.iter().filter(|level| level.is_large()) {
                    if let Some(present) = &level.present {
                        prefetch(&present[slash16 / 64]);
                    }
                    level.prefetch(crate::pipeline::normalize::mask_u32(bits, level.len));
                }
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                for level in self.v6.iter().filter(|level| level.is_large()) {
                    level.prefetch(crate::pipeline::normalize::mask_u128(bits, level.len));
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
        self.v4.iter().map(|level| level.map.len()).sum::<usize>()
            + self.v6.iter().map(|level| level.map.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shrinks the maps and builds the filters of the large ones.
    pub fn shrink(&mut self) {
        self.v4.iter_mut().for_each(Level::shrink);
        self.v6.iter_mut().for_each(Level::shrink);
    }

    pub fn heap_bytes(&self) -> usize {
        self.v4_networks.len() * 8
            + self
                .v4
                .iter()
                .map(|level| level.heap_bytes(5))
                .sum::<usize>()
            + self
                .v6
                .iter()
                .map(|level| level.heap_bytes(17))
                .sum::<usize>()
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
    fn filter_has_no_false_negatives_and_few_false_positives() {
        let mut filter = Filter::with_capacity(100_000);
        for n in 0..100_000u64 {
            filter.insert(Hasher::default().hash_one(format!("key{n}")));
        }
        for n in 0..100_000u64 {
            assert!(filter.may_contain(Hasher::default().hash_one(format!("key{n}"))));
        }
        let false_positives = (0..100_000u64)
            .filter(|n| filter.may_contain(Hasher::default().hash_one(format!("other{n}"))))
            .count();
        // About 0.1% at 16 bits per key.
        assert!(false_positives < 300, "{false_positives} false positives");
    }

    #[test]
    fn filtered_indexes_find_every_key() {
        let mut postings = Postings::default();
        let mut index = StrIndex::default();
        for n in 0..20_000u32 {
            index.insert(&format!("k{n}"), n, &mut postings);
        }
        index.shrink();
        assert!(index.filter.is_some());
        index.insert("late", 7, &mut postings);
        for n in 0..20_000u32 {
            assert_eq!(postings.ids(index.get(&format!("k{n}")).unwrap()), &[n]);
        }
        assert_eq!(postings.ids(index.get("late").unwrap()), &[7]);
        assert!(index.get("k20000").is_none());

        let mut map: PrefixMap<u32> = PrefixMap::default();
        for n in 0..20_000u32 {
            *map.slot(IpAddr::from((n * 7919).to_be_bytes()), 32, || 0) = n;
            *map.slot(IpAddr::from(u128::from(n).to_be_bytes()), 128, || 0) = n;
        }
        map.shrink();
        *map.slot("10.0.0.0".parse().unwrap(), 8, || 0) = 99;
        *map.slot("8.8.8.8".parse().unwrap(), 32, || 0) = 98;
        for n in 0..20_000u32 {
            let mut found = Vec::new();
            map.for_each_containing(IpAddr::from((n * 7919).to_be_bytes()), |_, v| {
                found.push(*v)
            });
            map.for_each_containing(IpAddr::from(u128::from(n).to_be_bytes()), |_, v| {
                found.push(*v)
            });
            assert!(
                found.iter().filter(|v| **v == n).count() >= 2,
                "{n}: {found:?}"
            );
        }
        assert!(map.contains("8.8.8.8".parse().unwrap()));
        assert!(map.contains("10.9.9.9".parse().unwrap()));
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

    #[test]
    fn prefix_map_every_ipv4_length_and_its_edges() {
        // Networks of every length in one map, as a snapshot has them: each contains its
        // first and last address, and the addresses just outside it are not in it.
        let mut map: PrefixMap<u32> = PrefixMap::default();
        let base = |len: u8| 0x5000_0000u32 + (u32::from(len) << 20);
        for len in 1..=32u8 {
            let network = crate::pipeline::normalize::mask_u32(base(len), len);
            *map.slot(IpAddr::from(network.to_be_bytes()), len, || 0) = u32::from(len);
        }
        map.shrink();
        for len in 8..=32u8 {
            let first = crate::pipeline::normalize::mask_u32(base(len), len);
            let last = first | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let lengths = |addr: u32| {
                let mut out = Vec::new();
                map.for_each_containing(IpAddr::from(addr.to_be_bytes()), |at, _| out.push(at));
                out
            };
            for addr in [first, last] {
                assert!(lengths(addr).contains(&len), "/{len} at {addr:#x}");
            }
            for addr in [first.wrapping_sub(1), last.wrapping_add(1)] {
                let network = crate::pipeline::normalize::mask_u32(addr, len);
                let own = crate::pipeline::normalize::mask_u32(base(len), len);
                assert_eq!(
                    lengths(addr).contains(&len),
                    network == own,
                    "/{len} at {addr:#x}"
                );
            }
        }
    }

    #[test]
    fn filtered_prefix_levels_find_every_network() {
        // Enough networks of each length for the level to get its filter: every network is
        // still found (a filter has no false negatives), and addresses outside all of them
        // are not.
        let mut map: PrefixMap<u32> = PrefixMap::default();
        let count = MIN_FILTERED_NETWORKS as u32 + 50;
        let network = |len: u8, idx: u32| {
            (0x0a00_0000 + (idx << 12) + (u32::from(len) << 8)) & (u32::MAX << (32 - len))
        };
        for len in [20u8, 24, 28] {
            for idx in 0..count {
                *map.slot(IpAddr::from(network(len, idx).to_be_bytes()), len, || 0) =
                    u32::from(len);
            }
        }
        map.shrink();
        for len in [20u8, 24, 28] {
            for idx in 0..count {
                let addr = IpAddr::from((network(len, idx) | 1).to_be_bytes());
                let mut lengths = Vec::new();
                map.for_each_containing(addr, |at, _| lengths.push(at));
                assert!(lengths.contains(&len), "/{len} #{idx}");
            }
        }
        assert!(!map.contains("11.0.0.1".parse().unwrap()));
        assert!(map.v4.iter().all(|level| level.filter.is_some()));
    }
}
