//! The `tern` command line; see [`tern_export::cli`].

use tern_export::cli::{self, CliError};

fn main() {
    match cli::run(std::env::args_os()) {
        Ok(()) => {}
        Err(CliError::Usage(e)) => {
            let _ = e.print();
            std::process::exit(e.exit_code());
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(e.exit_code());
        }
    }
}
