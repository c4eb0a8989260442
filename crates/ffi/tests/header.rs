//! `include/confab.h` must be what cbindgen generates from the current source.

#[test]
fn header_is_up_to_date() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("reading cbindgen.toml");
    let bindings = cbindgen::Builder::new().with_crate(dir).with_config(config).generate().expect("generating");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = format!("{dir}/include/confab.h");
    if std::env::var_os("CONFAB_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("writing the header");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "crates/ffi/include/confab.h is out of date with crates/ffi/src; regenerate it with \
         `CONFAB_BLESS=1 cargo test -p ffi --test header` and commit it"
    );
}
