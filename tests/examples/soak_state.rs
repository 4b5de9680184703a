//! Prints how far interrupted syncs got (`coffer_tests::progress`), for
//! `bench/soak.sh`: `held objects hashed only_catalog_left` on one line.
//!
//!   soak_state CATALOG DISK

fn main() {
    let args: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let [catalog, disk] = args.as_slice() else {
        eprintln!("usage: soak_state CATALOG DISK");
        std::process::exit(2);
    };
    let d = coffer_tests::progress::progress(catalog, disk);
    println!(
        "{} {} {} {}",
        d.held,
        d.objects,
        d.hashed,
        u8::from(d.only_catalog_left)
    );
}
