//! The greeting parser on arbitrary bytes: never panics; a prefix that passes means the full
//! greeting's checks agree with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omq_zmtp::Greeting;

fuzz_target!(|data: &[u8]| {
    let prefix_ok = Greeting::check_prefix(data).is_ok();
    if let Some(full) = data.first_chunk::<64>() {
        let parsed = Greeting::parse(full);
        assert_eq!(parsed.is_ok(), prefix_ok);
        if let Ok(g) = parsed {
            assert!(g.major >= 3);
            let _ = (g.version(), g.mechanism_name());
        }
    }
});
