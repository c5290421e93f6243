"""Reliability harness: faults, kills, fuzzing, property runs and load against the local stack, and their figures.

`python -m local.reliability` (`make reliability`) runs the whole fault matrix, the kill matrix, the
property-based sequences, the hostile-input fuzzing, the load case and an independent check against a
separately started emulator and moto server, prints the tables and writes docs/RELIABILITY.md.
`tests/reliability/` runs a small, fast subset of the same checks in `make test`.

How a run is made: each world is a `LocalStack` (emulator, fault proxy in front of moto) with its own table
and bucket; the real handler runs in a *worker* subprocess (`local.worker`, a warm "Lambda container") that
reads one request per line and imports the handler once; the emulator and fault proxy can SIGKILL it at any
request (`FaultPlan.kill`), after which a standby worker takes over, as a fresh Lambda container would.
What a run did is judged only from outside: the objects in S3, the items in DynamoDB, the calls the servers
saw and the lines the worker printed. Every run is judged against the archive before and after it
(`accounting`); each suite then audits the whole archive (`World.audit`, `oracle`).

Modules: `constants` (names and canaries), `scenarios` (every fault the harness injects: the kinds per
operation and the fault matrix; a new fault kind goes there), `world` (one archive under test), `accounting`
(every run judged), `oracle` (what the archive and each record must be), `hostile` (hostile emulator and
inputs), `suites/` (matrix, kills, properties, fuzz, load, independent), `report` (figures,
docs/RELIABILITY.md), `__main__` (the command line).
"""
