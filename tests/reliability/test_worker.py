"""The worker plays the Lambda container: it runs the real handler and nothing of the harness, so its memory
figures are the handler's; a new configuration is a new container."""

from __future__ import annotations

from local.reliability.world import WorldFactory

HARNESS = ("moto", "flask", "werkzeug", "local.stack", "local.gls", "local.reliability", "bench")


def test_the_worker_imports_the_handler_and_nothing_of_the_harness(make_world: WorldFactory) -> None:
    world = make_world()
    world.seed(3)

    run = world.worker.invoke(world.env(), modules=True)

    assert run.error is None and run.total("archived") == 3
    assert {"archiver.handler", "boto3", "local.lambda_context", "local.memory"} <= set(run.modules)
    loaded = [m for m in run.modules if any(m == name or m.startswith(f"{name}.") for name in HARNESS)]
    assert loaded == []
    assert 0 < run.rss_after_import_kb <= run.maxrss_kb


def test_a_new_configuration_is_a_new_container(make_world: WorldFactory) -> None:
    first, second = make_world(), make_world()  # other endpoints, table and bucket; the same worker process
    first.seed(4)
    second.seed(6)

    assert first.run().total("archived") == 4
    assert second.run().total("archived") == 6
    assert first.run().total("already_archived") == 4

    assert (first.audit().archived, second.audit().archived) == (4, 6)
    assert first.worker.pid == second.worker.pid  # one warm process served all three runs
