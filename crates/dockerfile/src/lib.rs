//! berth-dockerfile: the Dockerfile parser (`parser`), Docker's variable expansion (`shell`)
//! and the `.dockerignore` matcher (`ignore`). Pure: no I/O, no daemon types.

pub mod ignore;
pub mod parser;
pub mod shell;

pub use ignore::Matcher;
pub use parser::{parse, Args, Dockerfile, Heredoc, Instruction, ParseError};
