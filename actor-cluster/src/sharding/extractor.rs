//! Mapping a message to its entity and shard: the [`MessageExtractor`] trait and the default
//! shard function, a 32-bit FNV-1a hash of the entity id modulo the number of shards.
//!
//! The hash is written out here (not `std`'s `DefaultHasher`, whose output may change between
//! Rust releases and is randomly keyed per process), so every node of every version agrees on
//! which shard an entity belongs to.

/// The 32-bit FNV-1a offset basis.
const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
/// The 32-bit FNV-1a prime.
const FNV_PRIME: u32 = 0x0100_0193;

/// The 32-bit FNV-1a hash of `bytes`: stable across processes, platforms and Rust versions.
///
/// # Examples
///
/// ```
/// use actor_cluster::sharding::fnv1a_32;
/// assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
/// assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
/// ```
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The default shard of `entity_id`: `fnv1a_32(entity_id) % number_of_shards` (shard 0 when
/// `number_of_shards` is 0, which validated settings never allow).
///
/// # Examples
///
/// ```
/// use actor_cluster::sharding::default_shard_id;
/// let shard = default_shard_id("user-42", 100);
/// assert!(shard < 100);
/// assert_eq!(shard, default_shard_id("user-42", 100)); // the same everywhere, every time
/// ```
pub fn default_shard_id(entity_id: &str, number_of_shards: u32) -> u32 {
    fnv1a_32(entity_id.as_bytes())
        .checked_rem(number_of_shards)
        .unwrap_or(0)
}

/// Tells sharding which entity a message is for and which shard that entity lives in.
///
/// Implement [`MessageExtractor::entity_id`]; keep the default [`MessageExtractor::shard_id`]
/// unless entities must be grouped differently. Both must be pure: every node must compute
/// the same answer for the same message. Any `Fn(&M) -> String` is an extractor.
///
/// # Examples
///
/// ```
/// use actor_cluster::sharding::MessageExtractor;
///
/// struct Add { counter: String, by: u64 }
///
/// let extractor = |msg: &Add| msg.counter.clone();
/// let msg = Add { counter: "c-1".into(), by: 2 };
/// assert_eq!(extractor.entity_id(&msg), "c-1");
/// assert!(extractor.shard_id("c-1", 10) < 10);
/// ```
pub trait MessageExtractor<M>: Send + Sync + 'static {
    /// The id of the entity `msg` is for.
    fn entity_id(&self, msg: &M) -> String;

    /// The shard (below `number_of_shards`) of the entity `entity_id`; FNV-1a by default.
    fn shard_id(&self, entity_id: &str, number_of_shards: u32) -> u32 {
        default_shard_id(entity_id, number_of_shards)
    }
}

impl<M, F> MessageExtractor<M> for F
where
    F: Fn(&M) -> String + Send + Sync + 'static,
{
    fn entity_id(&self, msg: &M) -> String {
        self(msg)
    }
}

/// The actor name of an entity: its id with every character outside `[A-Za-z0-9_-]`
/// written as `.XX` hex bytes (so any id, empty or `$`-prefixed ones included, is a valid
/// and unique child name).
pub(crate) fn entity_actor_name(entity_id: &str) -> String {
    let mut name = String::with_capacity(entity_id.len() + 2);
    name.push('e');
    for byte in entity_id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            name.push(char::from(byte));
        } else {
            name.push('.');
            name.push(char::from(HEX[usize::from(byte >> 4)]));
            name.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    name
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite (32-bit FNV-1a).
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn default_shard_ids_are_pinned() {
        // Pinned values: changing them would move every entity of a running cluster.
        assert_eq!(default_shard_id("a", 100), 0xe40c_292c_u32 % 100);
        assert_eq!(default_shard_id("foobar", 7), 0xbf9c_f968_u32 % 7);
        assert_eq!(default_shard_id("anything", 0), 0);
    }

    #[test]
    fn entity_names_escape_reserved_characters() {
        assert_eq!(entity_actor_name("abc-1_x"), "eabc-1_x");
        assert_eq!(entity_actor_name(""), "e");
        assert_eq!(entity_actor_name("$a/b"), "e.24a.2fb");
        assert!(actor_core::validate_actor_name(&entity_actor_name("ü /$")).is_ok());
    }

    proptest! {
        #[test]
        fn shard_is_in_range(id in ".*", n in 1u32..10_000) {
            prop_assert!(default_shard_id(&id, n) < n);
        }

        #[test]
        fn entity_names_are_valid_and_injective(a in ".{0,12}", b in ".{0,12}") {
            let (na, nb) = (entity_actor_name(&a), entity_actor_name(&b));
            prop_assert!(actor_core::validate_actor_name(&na).is_ok());
            prop_assert_eq!(na == nb, a == b);
        }
    }
}
