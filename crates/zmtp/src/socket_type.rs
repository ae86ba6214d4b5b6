//! ZeroMQ socket types as they appear in the `Socket-Type` metadata property, and which pairs of
//! them may talk to each other.

use std::fmt;

/// A ZeroMQ socket type.
///
/// The eleven standard types (RFC 28-31) and the eight draft types that run over ZMTP (RFC 41,
/// 47-52). STREAM is not a ZMTP socket type (it speaks raw TCP) and DGRAM is UDP-only, so neither is
/// here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketType {
    /// Exclusive pair.
    Pair,
    /// Publisher.
    Pub,
    /// Subscriber.
    Sub,
    /// Requester (strict send/receive alternation).
    Req,
    /// Replier (strict receive/send alternation).
    Rep,
    /// Asynchronous requester.
    Dealer,
    /// Asynchronous replier, addressing peers by routing id.
    Router,
    /// Pipeline sink.
    Pull,
    /// Pipeline source.
    Push,
    /// Publisher that sees subscriptions.
    XPub,
    /// Subscriber that sends subscriptions as messages.
    XSub,
    /// Draft: thread-safe server, replies by routing id.
    Server,
    /// Draft: thread-safe client.
    Client,
    /// Draft: group publisher.
    Radio,
    /// Draft: group subscriber.
    Dish,
    /// Draft: thread-safe pipeline sink.
    Gather,
    /// Draft: thread-safe pipeline source.
    Scatter,
    /// Draft: peer-to-peer, addressed by routing id.
    Peer,
    /// Draft: thread-safe exclusive pair.
    Channel,
}

impl SocketType {
    /// Every socket type, standard ones first.
    pub const ALL: [Self; 19] = [
        Self::Pair,
        Self::Pub,
        Self::Sub,
        Self::Req,
        Self::Rep,
        Self::Dealer,
        Self::Router,
        Self::Pull,
        Self::Push,
        Self::XPub,
        Self::XSub,
        Self::Server,
        Self::Client,
        Self::Radio,
        Self::Dish,
        Self::Gather,
        Self::Scatter,
        Self::Peer,
        Self::Channel,
    ];

    /// The name sent in the `Socket-Type` property (upper case, as libzmq writes it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pair => "PAIR",
            Self::Pub => "PUB",
            Self::Sub => "SUB",
            Self::Req => "REQ",
            Self::Rep => "REP",
            Self::Dealer => "DEALER",
            Self::Router => "ROUTER",
            Self::Pull => "PULL",
            Self::Push => "PUSH",
            Self::XPub => "XPUB",
            Self::XSub => "XSUB",
            Self::Server => "SERVER",
            Self::Client => "CLIENT",
            Self::Radio => "RADIO",
            Self::Dish => "DISH",
            Self::Gather => "GATHER",
            Self::Scatter => "SCATTER",
            Self::Peer => "PEER",
            Self::Channel => "CHANNEL",
        }
    }

    /// Parses a `Socket-Type` property value. Like libzmq, the comparison is exact (upper case).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == name)
    }

    /// Whether this is one of the draft socket types.
    pub const fn is_draft(self) -> bool {
        matches!(
            self,
            Self::Server
                | Self::Client
                | Self::Radio
                | Self::Dish
                | Self::Gather
                | Self::Scatter
                | Self::Peer
                | Self::Channel
        )
    }

    /// Whether a socket of this type sends the `Identity` property in its READY command.
    ///
    /// libzmq sends it from REQ, DEALER and ROUTER (even when empty) and from no other type.
    pub const fn sends_identity(self) -> bool {
        matches!(self, Self::Req | Self::Dealer | Self::Router)
    }

    /// Whether a socket of this type may talk to a peer of type `peer` (RFC 37's valid pairs).
    pub const fn is_compatible(self, peer: Self) -> bool {
        use SocketType::*;
        match self {
            Req => matches!(peer, Rep | Router),
            Rep => matches!(peer, Req | Dealer),
            Dealer => matches!(peer, Rep | Dealer | Router),
            Router => matches!(peer, Req | Dealer | Router),
            Pub | XPub => matches!(peer, Sub | XSub),
            Sub | XSub => matches!(peer, Pub | XPub),
            Push => matches!(peer, Pull),
            Pull => matches!(peer, Push),
            Pair => matches!(peer, Pair),
            Server => matches!(peer, Client),
            Client => matches!(peer, Server),
            Radio => matches!(peer, Dish),
            Dish => matches!(peer, Radio),
            Scatter => matches!(peer, Gather),
            Gather => matches!(peer, Scatter),
            Peer => matches!(peer, Peer),
            Channel => matches!(peer, Channel),
        }
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in SocketType::ALL {
            assert_eq!(SocketType::from_name(t.as_str().as_bytes()), Some(t));
        }
        assert_eq!(SocketType::from_name(b"STREAM"), None);
        assert_eq!(SocketType::from_name(b"dealer"), None);
    }

    #[test]
    fn compatibility_is_symmetric() {
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                assert_eq!(a.is_compatible(b), b.is_compatible(a), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn compatibility_matrix_matches_rfc() {
        use SocketType::*;
        let valid: &[(SocketType, SocketType)] = &[
            (Req, Rep),
            (Req, Router),
            (Rep, Dealer),
            (Dealer, Dealer),
            (Dealer, Router),
            (Router, Router),
            (Pub, Sub),
            (Pub, XSub),
            (XPub, Sub),
            (XPub, XSub),
            (Push, Pull),
            (Pair, Pair),
            (Client, Server),
            (Radio, Dish),
            (Scatter, Gather),
            (Peer, Peer),
            (Channel, Channel),
        ];
        let mut count = 0;
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                let expected = valid.contains(&(a, b)) || valid.contains(&(b, a));
                assert_eq!(a.is_compatible(b), expected, "{a} vs {b}");
                count += usize::from(expected);
            }
        }
        // 17 unordered pairs, 5 of them a type with itself.
        assert_eq!(count, 17 * 2 - 5);
        assert_eq!(SocketType::ALL.iter().filter(|t| t.is_draft()).count(), 8);
    }
}
