//! An asymmetric memory barrier: a free "light" side for the hot path (the producer's publish)
//! and an expensive "heavy" side for the rare path (a consumer going to sleep).
//!
//! A consumer's sleep and the producer's publish form a Dekker pattern: each side stores its own
//! word (the consumer its waiting flag, the producer the tail) and then loads the other's.
//! Without a store-load barrier on *both* sides each can miss the other's store, and the consumer
//! sleeps on a published item. A full fence (or a locked read-modify-write) on every publish
//! makes the producer wait for its stores to reach cache lines the consumer keeps reading.
//!
//! On Linux, `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` makes every running thread of the
//! process execute a full memory barrier before the call returns. With it the heavy side (a
//! consumer about to sleep anyway) pays one system call, and the light side needs only a compiler
//! fence. The producer's load either comes after the barrier forced on its thread, and then sees
//! the flag stored before the call, or before it, and then its tail store, earlier in program
//! order, is drained by that barrier before the call returns and the consumer's re-check sees it.
//! This is the asymmetric Dekker of RCU implementations and folly's `asymmetricHeavyBarrier`.
//! Where membarrier is missing or refused (other systems, old kernels, seccomp, Miri, loom), both
//! sides use `fence(SeqCst)`, which is correct and merely slower.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(loom)]
use loom::sync::atomic::fence;
#[cfg(not(loom))]
use std::sync::atomic::fence;

const UNKNOWN: u8 = 0;
const ASYMMETRIC: u8 = 1;
const FENCES: u8 = 2;

/// The process-wide choice, made once, before the first ring exists.
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether the asymmetric form is in use, registering this process for it on first use.
///
/// Every ring is created after the choice is made (creating one makes it), and the choice never
/// changes, so the two sides of every ring always agree.
pub(crate) fn asymmetric() -> bool {
    match MODE.load(Ordering::Relaxed) {
        ASYMMETRIC => true,
        FENCES => false,
        _ => {
            let ok = membarrier::register();
            // Racing first calls may both register; they reach the same answer.
            MODE.store(if ok { ASYMMETRIC } else { FENCES }, Ordering::Relaxed);
            ok
        }
    }
}

/// The light side, between the hot path's store and load: `asymmetric` as the ring's mode (the
/// process-wide choice when it was created).
#[inline(always)]
pub(crate) fn light(asymmetric: bool) {
    if asymmetric {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The heavy side, between the rare path's store and load.
pub(crate) fn heavy() {
    if asymmetric() {
        membarrier::barrier();
    } else {
        fence(Ordering::SeqCst);
    }
}

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod membarrier {
    const QUERY: libc::c_int = 0;
    const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes two integers and touches no memory of ours; any failure is
        // reported through the return value.
        unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_uint) }
    }

    pub(super) fn register() -> bool {
        let supported = membarrier(QUERY);
        supported >= 0
            && supported & libc::c_long::from(PRIVATE_EXPEDITED) != 0
            && membarrier(REGISTER_PRIVATE_EXPEDITED) == 0
    }

    pub(super) fn barrier() {
        // The process registered in `register`, so EPERM cannot happen, and ENOSYS or EINVAL
        // would have failed the query. A failure here would leave the light side unprotected:
        // a bug worth stopping for, not something to paper over.
        let r = membarrier(PRIVATE_EXPEDITED);
        assert_eq!(r, 0, "membarrier failed after registration");
    }
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn barrier() {
        unreachable!("the asymmetric form is never chosen without membarrier")
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn both_sides_run_in_whichever_mode_is_available() {
        let asymmetric = super::asymmetric();
        assert_eq!(super::asymmetric(), asymmetric, "the choice is stable");
        super::light(asymmetric);
        super::heavy();
        #[cfg(all(target_os = "linux", not(miri)))]
        eprintln!("asymmetric barrier: {asymmetric}");
    }
}
