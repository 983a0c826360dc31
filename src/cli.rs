//! The command line: `enroll`, `identify`, `embed`, `people`, `bench`, `models`.
