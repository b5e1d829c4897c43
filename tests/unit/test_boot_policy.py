"""The master's verdicts on workers that die before they are ready."""

from __future__ import annotations

from hybridserve.master.boot import MAX_BOOT_FAILURES, BootPolicy, Verdict


def test_a_master_that_never_served_gives_up_on_a_load_error_at_once() -> None:
    policy = BootPolicy()
    assert policy.failed(1, load_error=True).verdict is Verdict.GIVE_UP


def test_a_master_that_never_served_retries_crashes_with_growing_delays_then_gives_up() -> None:
    policy = BootPolicy()
    delays = [policy.failed(1, load_error=False) for _ in range(MAX_BOOT_FAILURES - 1)]
    assert [d.verdict for d in delays] == [Verdict.RETRY] * (MAX_BOOT_FAILURES - 1)
    assert [d.delay_s for d in delays] == sorted(d.delay_s for d in delays)
    assert delays[0].delay_s < delays[-1].delay_s
    assert policy.failed(1, load_error=False).verdict is Verdict.GIVE_UP


def test_a_reload_generation_that_cannot_load_is_retired_not_the_master() -> None:
    policy = BootPolicy()
    policy.generation_ready(1)
    assert policy.failed(2, load_error=True).verdict is Verdict.RETIRE


def test_a_reload_generation_that_keeps_crashing_is_retired_after_the_retries() -> None:
    policy = BootPolicy()
    policy.generation_ready(1)
    verdicts = [policy.failed(2, load_error=False).verdict for _ in range(MAX_BOOT_FAILURES)]
    assert verdicts[:-1] == [Verdict.RETRY] * (MAX_BOOT_FAILURES - 1)
    assert verdicts[-1] is Verdict.RETIRE


def test_the_serving_generation_never_gives_up_and_its_backoff_is_capped() -> None:
    policy = BootPolicy()
    policy.generation_ready(1)
    decisions = [policy.failed(1, load_error=True) for _ in range(50)]
    assert {d.verdict for d in decisions} == {Verdict.RETRY}
    assert max(d.delay_s for d in decisions) <= 10.0


def test_a_worker_that_boots_resets_the_count() -> None:
    policy = BootPolicy()
    for _ in range(MAX_BOOT_FAILURES - 1):
        policy.failed(1, load_error=False)
    policy.worker_ready(1)
    assert policy.failed(1, load_error=False).verdict is Verdict.RETRY


def test_a_retried_reload_starts_counting_afresh() -> None:
    policy = BootPolicy()
    policy.generation_ready(1)
    policy.failed(2, load_error=True)
    policy.forget(2)
    assert policy.failed(3, load_error=False).verdict is Verdict.RETRY
    policy.generation_ready(3)
    assert policy.serving == 3
    assert policy.failed(4, load_error=True).verdict is Verdict.RETIRE
