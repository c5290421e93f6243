"""The archiver's package."""

# records first: archiver.perfstats imports records.athena_timestamp and records imports perfstats' columns
# after defining it, so records must start first whichever module is imported first (see archiver.records).
from archiver import records as records
