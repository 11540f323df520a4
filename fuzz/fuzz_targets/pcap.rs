#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mongowire_fuzz::capture(data));
