import pytest

from serverbench.observe.noise import (
    CLOCK_TICKS,
    CpuTicks,
    NoiseProbe,
    NoiseWindow,
    ProcessTicks,
    Snapshot,
    disturbances,
    noise_window,
    parse_pid_stat,
    parse_pressure,
    parse_proc_stat,
    take_snapshot,
)

PROC_STAT = """cpu  69041 0 12228 36860 256 0 167 861 0 0
cpu0 34289 0 6141 18833 25 0 24 394 0 0
cpu1 34751 0 6087 18027 231 0 143 466 0 0
intr 123
"""


def test_proc_stat_per_cpu_without_the_total_line():
    cpus = parse_proc_stat(PROC_STAT)
    assert sorted(cpus) == [0, 1]
    assert cpus[0] == CpuTicks(busy=34289 + 6141 + 24, idle=18833, iowait=25, steal=394)


def _stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, start: int, cpu: int) -> str:
    fields = ["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime)] + ["0"] * 6
    fields += [str(start)] + ["0"] * 16 + [str(cpu), "0", "0"]
    return f"{pid} ({comm}) " + " ".join(fields)


def test_pid_stat_with_a_name_holding_spaces_and_parentheses():
    parsed = parse_pid_stat(_stat_line(42, "my (odd) name", 1, 100, 50, 777, 1))
    assert parsed == ProcessTicks(
        name="my (odd) name", start_ticks=777, cpu_ticks=150, last_cpu=1, kernel_thread=False
    )
    assert parse_pid_stat(_stat_line(9, "ksoftirqd/0", 2, 1, 1, 5, 0)).kernel_thread  # type: ignore[union-attr]
    assert parse_pid_stat("42 (cut) S 1") is None


def test_pressure_totals():
    text = "some avg10=1.00 avg60=0.50 avg300=0.10 total=1500000\nfull avg10=0 avg60=0 avg300=0 total=20\n"
    assert parse_pressure("memory", text) == {"memory_some": 1_500_000, "memory_full": 20}


def _snapshot(
    steal0: int = 0,
    foreign_ticks: int = 0,
    wrk_ticks: int = 0,
    memory_us: int = 0,
    freq: int = 2_000_000,
) -> Snapshot:
    return Snapshot(
        cpus={
            0: CpuTicks(busy=100, idle=0, iowait=0, steal=steal0),
            1: CpuTicks(busy=100, idle=0, iowait=0, steal=0),
        },
        processes={
            10: ProcessTicks(
                name="backup",
                start_ticks=5,
                cpu_ticks=foreign_ticks,
                last_cpu=0,
                kernel_thread=False,
            ),
            11: ProcessTicks(
                name="wrk", start_ticks=6, cpu_ticks=wrk_ticks, last_cpu=1, kernel_thread=False
            ),
            12: ProcessTicks(
                name="ksoftirqd/0",
                start_ticks=1,
                cpu_ticks=wrk_ticks,
                last_cpu=0,
                kernel_thread=True,
            ),
        },
        frequency_khz={0: freq, 1: 2_000_000},
        pressure_us={"memory_some": memory_us},
    )


def _window(before: Snapshot, after: Snapshot) -> NoiseWindow:
    return noise_window(before, after, 5.0, (0,), (1,), benchmark_pids={11})


def test_a_quiet_window_has_no_disturbance():
    quiet = _window(_snapshot(), _snapshot(wrk_ticks=5 * CLOCK_TICKS))
    assert quiet.client.foreign_cpu_s == 0  # wrk is the benchmark
    assert quiet.server.kernel_cpu_s == pytest.approx(5.0)  # loopback work, not noise
    assert disturbances(quiet) == []


def test_steal_on_the_server_cpus_is_flagged_with_its_numbers():
    stolen = _window(_snapshot(), _snapshot(steal0=CLOCK_TICKS // 2))
    assert stolen.server.steal_s == pytest.approx(0.5)
    found = disturbances(stolen)
    assert [(d.kind, d.side) for d in found] == [("steal", "server")]
    assert "10.0 %" in found[0].text


def test_a_foreign_process_on_the_server_cpu_is_named():
    busy = _window(_snapshot(), _snapshot(foreign_ticks=CLOCK_TICKS))
    found = disturbances(busy)
    assert [(d.kind, d.side) for d in found] == [("foreign_cpu", "server")]
    assert "backup (pid 10, 1.00 s)" in found[0].text
    assert "20.0 %" in found[0].text


def test_a_little_foreign_cpu_is_recorded_but_not_flagged():
    light = _window(_snapshot(), _snapshot(foreign_ticks=CLOCK_TICKS // 10))
    assert light.server.foreign_cpu_s == pytest.approx(0.1, abs=0.01)
    assert disturbances(light) == []


def test_a_recycled_pid_counts_from_its_own_start():
    before = _snapshot(foreign_ticks=50 * CLOCK_TICKS)
    after = _snapshot(foreign_ticks=CLOCK_TICKS)
    reborn = Snapshot(
        cpus=after.cpus,
        processes={
            **after.processes,
            10: ProcessTicks(
                name="new", start_ticks=99, cpu_ticks=CLOCK_TICKS, last_cpu=0, kernel_thread=False
            ),
        },
        frequency_khz=after.frequency_khz,
        pressure_us=after.pressure_us,
    )
    assert _window(before, reborn).server.foreign_cpu_s == pytest.approx(1.0)


def test_frequency_change_and_memory_pressure_are_flagged():
    window = _window(_snapshot(), _snapshot(freq=1_500_000, memory_us=500_000))
    kinds = [d.kind for d in disturbances(window)]
    assert kinds == ["frequency", "memory_pressure"]
    assert window.pressure_share["memory_some"] == pytest.approx(0.1)


def test_the_probe_reads_this_host_without_failing():
    snapshot = take_snapshot()
    assert snapshot.cpus
    assert snapshot.processes
    probe = NoiseProbe((0,), (0,))
    probe.start()
    window = probe.stop(benchmark_pids=())
    assert window.window_s >= 0
    assert window.server.cpus == (0,)
