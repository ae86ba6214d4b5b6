//! The synchronisation primitives the ring uses, swapped for loom's models under `--cfg loom`.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex};

/// `std::cell::UnsafeCell` with loom's closure-based access API. Transparent, so a slice of
/// cells can be addressed as one run of `T`s.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A raw pointer to the contents of a run of cells, valid for reads and writes of all of them
/// (interior mutability covers the whole slice). Not available under loom, whose cells track each
/// access individually.
#[cfg(not(loom))]
pub(crate) fn run_ptr<T>(cells: &[UnsafeCell<T>]) -> *mut T {
    // `UnsafeCell` (ours and std's) is `repr(transparent)`, so the slice's pointer is a pointer
    // to the first `std::cell::UnsafeCell<T>`, and `raw_get` keeps its provenance over the slice.
    std::cell::UnsafeCell::raw_get(cells.as_ptr().cast::<std::cell::UnsafeCell<T>>())
}
