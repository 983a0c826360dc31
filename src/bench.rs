//! `facegate bench`: per-stage and whole-pipeline latency (median, p95) and peak memory.
