"""The local Lambda service: the Invoke API for the reconciler's asynchronous self-invocations.

`exceptions` (Lambda's error shapes), `models` (functions, the queue, the invocation log), `responses` (the
Invoke wire protocol), `server` (`LambdaService` and its `/_lambda/...` control API), `worker_runner` (the real
handler in a warm subprocess, for functions registered over HTTP), `client` (`LambdaServiceClient`),
`__main__` (the CLI: `python -m local.lambda_service`).
"""

from local.lambda_service.client import LambdaControlError, LambdaServiceClient
from local.lambda_service.exceptions import LambdaError
from local.lambda_service.models import Function, Invocation, LambdaBackend
from local.lambda_service.server import LambdaService

__all__ = [
    "Function",
    "Invocation",
    "LambdaBackend",
    "LambdaControlError",
    "LambdaError",
    "LambdaService",
    "LambdaServiceClient",
]
