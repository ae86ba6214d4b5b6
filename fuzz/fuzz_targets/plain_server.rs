//! A PLAIN connection in the server role fed arbitrary bytes (answering authentication
//! requests with an accept or a refusal).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../src/connection.rs"]
mod connection;

fuzz_target!(|data: &[u8]| {
    connection::run_with(data, true, connection::Security::Plain)
});
