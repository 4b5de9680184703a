//! The `coffer` binary: no arguments opens the window, a subcommand runs the
//! command-line tool. Everything lives in the library so tests can build it.

fn main() -> std::process::ExitCode {
    coffer::main()
}
