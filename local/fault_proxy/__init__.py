"""The fault proxy in front of moto (DynamoDB, S3) and the client of its `/_proxy/...` control API.

`python -m local.fault_proxy --upstream URL` runs it as its own process (first stdout line: its URL).
"""

from local.fault_proxy.client import FaultProxyClient, ProxyControlError
from local.fault_proxy.server import CONTROL_PREFIX, FaultProxy, s3_operation, split_batch_get

__all__ = ["CONTROL_PREFIX", "FaultProxy", "FaultProxyClient", "ProxyControlError", "s3_operation", "split_batch_get"]
