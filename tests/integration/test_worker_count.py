"""The default worker count through the real command: WEB_CONCURRENCY, else usable CPUs."""

from __future__ import annotations

import os

from hybridserve.cpus import available_cpus
from tests.conftest import ServeFactory
from tests.integration.test_config_sources import clean_env, printed, run_cli


def test_web_concurrency_sets_the_worker_count(serve: ServeFactory) -> None:
    server = serve(env={"WEB_CONCURRENCY": "3"})
    server.wait_for("Ready: 3 workers")
    assert len(server.worker_pids()) == 3


def test_default_is_the_cpus_this_process_may_use() -> None:
    env = {k: v for k, v in clean_env().items() if k != "WEB_CONCURRENCY"}
    rows = printed(run_cli("--print-config", env=env))
    assert rows["workers"] == (str(available_cpus()), "default")
    assert available_cpus() <= len(os.sched_getaffinity(0))
    rows = printed(run_cli("--print-config", env={**env, "WEB_CONCURRENCY": "6"}))
    assert rows["workers"] == ("6", "env WEB_CONCURRENCY")
    bad = run_cli("--print-config", env={**env, "WEB_CONCURRENCY": "lots"})
    assert bad.returncode == 2
    assert "environment: WEB_CONCURRENCY: expected an integer, got 'lots'" in bad.stderr
