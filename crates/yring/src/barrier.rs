//! An asymmetric memory barrier: a free "light" side for the hot path (the producer's publish) and
//! an expensive "heavy" side for the rare path (the consumer going to sleep).
//!
//! The consumer's sleep and the producer's publish form a Dekker pattern: each side stores its own
//! word (the consumer's waiting flag, the producer's tail) and then loads the other's. Without a
//! store-load barrier on *both* sides, each can miss the other's store and the consumer sleeps on a
//! published item. A full fence (or a locked read-modify-write) on every publish makes the
//! producer wait for its tail store to reach the cache line the consumer keeps reading, which
//! halves per-item throughput or worse.
//!
//! On Linux, `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` makes every running thread of the
//! process execute a full memory barrier before the call returns. With it, the heavy side (the
//! consumer, about to sleep anyway) pays one system call, and the light side needs only a compiler
//! fence: whichever order the two sides' accesses fall in around the forced barrier, one of them
//! sees the other's store. This is the asymmetric Dekker used by RCU implementations and folly's
//! `asymmetricHeavyBarrier`. Where membarrier is missing or refused (other systems, old kernels,
//! seccomp, Miri, loom), both sides use `fence(SeqCst)`, which is correct and merely slower.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(loom)]
use loom::sync::atomic::fence;
#[cfg(not(loom))]
use std::sync::atomic::fence;

const UNKNOWN: u8 = 0;
const ASYMMETRIC: u8 = 1;
const FENCES: u8 = 2;

/// The process-wide choice, made once.
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether the asymmetric form is available, registering this process for it on first use.
/// A ring decides once, at creation, so both of its sides always agree.
pub(crate) fn asymmetric_available() -> bool {
    match MODE.load(Ordering::Relaxed) {
        ASYMMETRIC => true,
        FENCES => false,
        _ => {
            let ok = membarrier::register();
            MODE.store(if ok { ASYMMETRIC } else { FENCES }, Ordering::Relaxed);
            ok
        }
    }
}

/// The light side, between the hot path's store and load.
#[inline(always)]
pub(crate) fn light(asymmetric: bool) {
    if asymmetric {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The heavy side, between the rare path's store and load.
pub(crate) fn heavy(asymmetric: bool) {
    if asymmetric {
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
        // would have failed the query. A failure here would leave the light side unprotected, so
        // it is a bug worth stopping for, not something to paper over.
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
        unreachable!("asymmetric barriers are never chosen without membarrier")
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn both_sides_run_in_whichever_mode_is_available() {
        let asymmetric = super::asymmetric_available();
        // The choice is stable for the process.
        assert_eq!(super::asymmetric_available(), asymmetric);
        super::light(asymmetric);
        super::heavy(asymmetric);
        eprintln!("asymmetric barrier available: {asymmetric}");
    }
}
