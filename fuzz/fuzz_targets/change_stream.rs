#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mongowire_fuzz::change_stream(data));
