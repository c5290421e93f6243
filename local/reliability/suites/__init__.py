"""The suites of `make reliability`, one module each: the fault matrix, the kill matrix, property-based
sequences, hostile-input fuzzing, load, and the independent run against separate processes."""
