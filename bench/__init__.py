"""Throughput benchmark of the archiver against the obvious script (`make bench`, writes docs/PERFORMANCE.md)."""
