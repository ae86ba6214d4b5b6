//! A counted subscription trie: prefix matching whose cost depends on the topic's length, not on
//! the number of subscriptions.
//!
//! Subscriptions are counted, as in libzmq: subscribing twice to a prefix takes two cancels to
//! remove it. [`subscribe`](SubscriptionTrie::subscribe) and
//! [`unsubscribe`](SubscriptionTrie::unsubscribe) report the 0 to 1 and 1 to 0 transitions, which
//! is what an XPUB passes upstream in its default (non-verbose) mode.
//!
//! Subscriptions can come from the network, so nothing here recurses: nodes live in an arena and
//! refer to each other by index, every walk is a loop, and dropping the trie drops a flat `Vec`.
//! The trie keeps one node per subscribed byte; the caller bounds the length of a subscription
//! (the socket's message size limit).

/// Index of a node in the arena.
type NodeId = u32;
const ROOT: NodeId = 0;

#[derive(Clone, Debug, Default)]
struct Node {
    /// Subscriptions that end exactly here.
    count: usize,
    /// Children, sorted by byte.
    children: Vec<(u8, NodeId)>,
    /// Parent and the byte that leads here (unused for the root).
    parent: NodeId,
    byte: u8,
}

impl Node {
    fn child(&self, b: u8) -> Option<NodeId> {
        self.children
            .binary_search_by_key(&b, |&(c, _)| c)
            .ok()
            .map(|i| self.children[i].1)
    }
}

/// A set of counted topic prefixes.
///
/// ```
/// use omq_sockets::SubscriptionTrie;
///
/// let mut subs = SubscriptionTrie::new();
/// assert!(subs.subscribe(b"weather."));
/// assert!(!subs.subscribe(b"weather.")); // counted, not new
/// assert!(subs.matches(b"weather.paris"));
/// assert!(!subs.matches(b"sport"));
/// assert!(!subs.unsubscribe(b"weather.")); // one left
/// assert!(subs.unsubscribe(b"weather.")); // gone
/// assert!(subs.is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct SubscriptionTrie {
    nodes: Vec<Node>,
    /// Freed arena slots.
    free: Vec<NodeId>,
    /// Distinct prefixes with a count above zero.
    distinct: usize,
}

impl Default for SubscriptionTrie {
    fn default() -> Self {
        Self::new()
    }
}

impl SubscriptionTrie {
    /// An empty trie.
    pub fn new() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
            distinct: 0,
        }
    }

    /// Whether no prefix is subscribed.
    pub fn is_empty(&self) -> bool {
        self.distinct == 0
    }

    /// The number of distinct subscribed prefixes.
    pub fn len(&self) -> usize {
        self.distinct
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    /// The node for `prefix`, if it exists.
    fn find(&self, prefix: &[u8]) -> Option<NodeId> {
        prefix
            .iter()
            .try_fold(ROOT, |id, &b| self.node(id).child(b))
    }

    /// Adds one subscription to `prefix`. Returns whether the prefix was not subscribed before.
    pub fn subscribe(&mut self, prefix: &[u8]) -> bool {
        let mut id = ROOT;
        for &b in prefix {
            id = match self.node(id).child(b) {
                Some(c) => c,
                None => self.add_child(id, b),
            };
        }
        let node = self.node_mut(id);
        node.count += 1;
        if node.count == 1 {
            self.distinct += 1;
            true
        } else {
            false
        }
    }

    fn add_child(&mut self, parent: NodeId, byte: u8) -> NodeId {
        let node = Node {
            count: 0,
            children: Vec::new(),
            parent,
            byte,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                let id = NodeId::try_from(self.nodes.len()).expect("fewer than 2^32 trie nodes");
                self.nodes.push(node);
                id
            }
        };
        let children = &mut self.node_mut(parent).children;
        let at = children.partition_point(|&(c, _)| c < byte);
        children.insert(at, (byte, id));
        id
    }

    /// Removes one subscription to `prefix`. Returns whether that was the last one (the prefix is
    /// no longer subscribed); `false` also when it was not subscribed at all.
    pub fn unsubscribe(&mut self, prefix: &[u8]) -> bool {
        let Some(id) = self.find(prefix) else {
            return false;
        };
        let node = self.node_mut(id);
        match node.count {
            0 => return false,
            1 => node.count = 0,
            _ => {
                node.count -= 1;
                return false;
            }
        }
        self.distinct -= 1;
        self.prune(id);
        true
    }

    /// Frees `id` and its ancestors while they hold nothing.
    fn prune(&mut self, mut id: NodeId) {
        while id != ROOT {
            let node = self.node(id);
            if node.count > 0 || !node.children.is_empty() {
                break;
            }
            let (parent, byte) = (node.parent, node.byte);
            let siblings = &mut self.node_mut(parent).children;
            if let Ok(i) = siblings.binary_search_by_key(&byte, |&(c, _)| c) {
                siblings.remove(i);
            }
            self.nodes[id as usize] = Node::default();
            self.free.push(id);
            id = parent;
        }
    }

    /// Whether some subscribed prefix is a prefix of `topic` (the empty prefix matches all).
    #[inline]
    pub fn matches(&self, topic: &[u8]) -> bool {
        let mut id = ROOT;
        if self.node(id).count > 0 {
            return true;
        }
        for &b in topic {
            match self.node(id).child(b) {
                Some(c) => id = c,
                None => return false,
            }
            if self.node(id).count > 0 {
                return true;
            }
        }
        false
    }

    /// How many times `prefix` itself is subscribed.
    pub fn count(&self, prefix: &[u8]) -> usize {
        self.find(prefix).map_or(0, |id| self.node(id).count)
    }

    /// Every subscribed prefix with its count, in byte order (to re-send subscriptions after a
    /// reconnect).
    pub fn subscriptions(&self) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        // Depth-first with an explicit stack of (node, depth); `path` holds the bytes so far.
        let mut path = Vec::new();
        let mut stack = vec![(ROOT, 0usize)];
        while let Some((id, depth)) = stack.pop() {
            path.truncate(depth);
            let node = self.node(id);
            if id != ROOT {
                path.push(node.byte);
            }
            if node.count > 0 {
                out.push((path.clone(), node.count));
            }
            let next = path.len();
            stack.extend(node.children.iter().rev().map(|&(_, c)| (c, next)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_prefix_matches_everything() {
        let mut t = SubscriptionTrie::new();
        assert!(!t.matches(b""));
        assert!(t.subscribe(b""));
        assert!(t.matches(b""));
        assert!(t.matches(b"anything"));
        assert_eq!(t.subscriptions(), [(Vec::new(), 1)]);
    }

    #[test]
    fn counted_and_pruned() {
        let mut t = SubscriptionTrie::new();
        assert!(t.subscribe(b"ab"));
        assert!(t.subscribe(b"abcd"));
        assert!(!t.subscribe(b"ab"));
        assert_eq!(t.count(b"ab"), 2);
        assert_eq!(t.len(), 2);
        assert!(!t.unsubscribe(b"abc"), "never subscribed");
        assert!(!t.unsubscribe(b"ab"));
        assert!(t.unsubscribe(b"ab"));
        assert!(t.matches(b"abcde"));
        assert!(!t.matches(b"abc"));
        assert!(t.unsubscribe(b"abcd"));
        assert!(t.is_empty());
        // Everything but the root went back to the free list.
        assert_eq!(t.free.len(), t.nodes.len() - 1);
        assert!(t.node(ROOT).children.is_empty());
    }

    #[test]
    fn deep_subscriptions_do_not_recurse() {
        let mut t = SubscriptionTrie::new();
        let long = vec![b'x'; 200_000];
        for n in [1, 1000, 200_000] {
            assert!(t.subscribe(&long[..n]));
        }
        assert!(t.matches(&long));
        assert_eq!(t.subscriptions().len(), 3);
        assert!(t.unsubscribe(&long));
        assert!(t.matches(&long));
        drop(t);
    }

    proptest! {
        /// The trie agrees with a counted list of prefixes on every operation.
        #[test]
        fn agrees_with_a_naive_model(ops in proptest::collection::vec(
            (0u8..3, proptest::collection::vec(0u8..3, 0..5)), 0..200)
        ) {
            let mut t = SubscriptionTrie::new();
            let mut model: std::collections::BTreeMap<Vec<u8>, usize> = Default::default();
            for (op, key) in ops {
                match op {
                    0 => {
                        let c = model.entry(key.clone()).or_default();
                        *c += 1;
                        prop_assert_eq!(t.subscribe(&key), *c == 1);
                    }
                    1 => {
                        let last = match model.get_mut(&key) {
                            Some(c) => { *c -= 1; *c == 0 }
                            None => false,
                        };
                        if last { model.remove(&key); }
                        prop_assert_eq!(t.unsubscribe(&key), last);
                    }
                    _ => {
                        let expected = model.keys().any(|k| key.starts_with(k));
                        prop_assert_eq!(t.matches(&key), expected);
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let all: Vec<(Vec<u8>, usize)> = model.into_iter().collect();
            prop_assert_eq!(t.subscriptions(), all);
        }
    }
}
