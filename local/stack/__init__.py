"""The one local stack: moto server, the fault proxy and the GameLift Streams emulator (`LocalStack`), in
threads or processes, and the one function that creates the archive's table and bucket.

`core` (LocalStack), `resources` (create_archive_resources, ledger items), `aws` (dummy credentials,
clients, scrubbed environments), `moto_server` (moto in a thread, or `python -m local.stack.moto_server`),
`processes` (a server process and its lifecycle).
"""

from local.stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, aws_client, scrubbed_env
from local.stack.core import LocalStack
from local.stack.resources import archived_item, create_archive_resources

__all__ = [
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "LocalStack",
    "archived_item",
    "aws_client",
    "create_archive_resources",
    "scrubbed_env",
]
