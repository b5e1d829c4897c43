"""The default worker count: affinity, cgroup v1/v2 quotas (fake files), WEB_CONCURRENCY."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridserve import cpus
from hybridserve.errors import ConfigError
from hybridserve.flags import parse_command_line
from hybridserve.sources import load


def fake_cgroup(tmp_path: Path, self_lines: str, files: dict[str, str]) -> tuple[str, str]:
    """A cgroup tree under tmp_path/cg and a /proc/self/cgroup naming our place in it."""
    root = tmp_path / "cg"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "self").write_text(self_lines)
    return str(root), str(tmp_path / "self")


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 8)


@pytest.mark.usefixtures("eight_cpus")
@pytest.mark.parametrize(
    ("cpu_max", "workers"),
    [("max 100000\n", 8), ("200000 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1)],
)
def test_cgroup_v2_cpu_max_rounds_up_and_never_below_one(
    tmp_path: Path, cpu_max: str, workers: int
) -> None:
    root, me = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": cpu_max})
    assert cpus.available_cpus(root, me) == workers


@pytest.mark.usefixtures("eight_cpus")
def test_cgroup_v2_limit_on_a_parent_binds_the_child(tmp_path: Path) -> None:
    root, me = fake_cgroup(
        tmp_path,
        "0::/kubepods/pod1/app\n",
        {
            "kubepods/pod1/cpu.max": "300000 100000\n",
            "kubepods/pod1/app/cpu.max": "max 100000\n",
            "kubepods/cpu.max": "max 100000\n",
        },
    )
    assert cpus.quota_cpus(root, me) == 3.0
    assert cpus.available_cpus(root, me) == 3


@pytest.mark.usefixtures("eight_cpus")
def test_cgroup_v1_cfs_quota(tmp_path: Path) -> None:
    lines = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
    files = {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    }
    root, me = fake_cgroup(tmp_path, lines, files)
    assert cpus.quota_cpus(root, me) == 2.5
    assert cpus.available_cpus(root, me) == 3
    unlimited = {**files, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1\n"}
    root, me = fake_cgroup(tmp_path, lines, unlimited)
    assert cpus.available_cpus(root, me) == 8


@pytest.mark.usefixtures("eight_cpus")
def test_v1_inside_a_container_reads_the_mount_root(tmp_path: Path) -> None:
    """Without a cgroup namespace the path names the host's tree; the mount is our own."""
    root, me = fake_cgroup(
        tmp_path,
        "2:cpu:/docker/abc\n",
        {"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    assert cpus.available_cpus(root, me) == 1


def test_affinity_is_the_bound_when_there_is_no_cgroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 3)
    assert cpus.available_cpus(str(tmp_path / "none"), str(tmp_path / "missing")) == 3
    root, me = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "800000 100000\n"})
    assert cpus.available_cpus(root, me) == 3  # a quota above the CPUs we may run on


def test_web_concurrency_is_the_default_below_file_and_variable(tmp_path: Path) -> None:
    def workers(env: dict[str, str], argv: tuple[str, ...] = ()) -> tuple[int, str]:
        result = load(parse_command_line(argv), cwd=tmp_path, environ=env)
        return result.config.workers, str(result.origins["workers"])

    assert workers({"WEB_CONCURRENCY": "5"}) == (5, "env WEB_CONCURRENCY")
    assert workers({"WEB_CONCURRENCY": "5", "HYBRIDSERVE_WORKERS": "2"})[0] == 2
    (tmp_path / "hs.toml").write_text("workers = 3\n")
    assert workers({"WEB_CONCURRENCY": "5"}, ("--config", "hs.toml"))[0] == 3
    assert workers({"WEB_CONCURRENCY": "5"}, ("-w", "4"))[0] == 4
    assert workers({"WEB_CONCURRENCY": " "})[1] == "default"
    with pytest.raises(ConfigError, match="environment: WEB_CONCURRENCY: expected an integer"):
        workers({"WEB_CONCURRENCY": "four"})
    with pytest.raises(ConfigError, match="environment: WEB_CONCURRENCY must be between 1"):
        workers({"WEB_CONCURRENCY": "0"})
