//! The gallery: enrolled people and their face embeddings in SQLite, mirrored in memory for open-set matching.
