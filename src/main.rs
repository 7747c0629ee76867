//! The `e2ee-harness` binary: parse the command line, run the command, map the outcome to
//! the documented exit code. Everything else lives in the library.

fn main() -> std::process::ExitCode {
    e2ee_harness::cli::main()
}
