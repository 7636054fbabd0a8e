"""Reading a captured container log (observe/logparse.py) over real-shaped samples of each format
(tests/fixtures/logs/): levels, errors with a stack trace counted once, whole traces, rate, stalls and
repeats collapsed. Every expected number below was counted by hand from the fixture file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from operate_mcp.model.observation import ContainerLog, LogAnalysis
from operate_mcp.observe.logparse import MAX_COLLAPSED, analyze_log
from operate_mcp.observe.templates import ErrorTemplates

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "logs"


def sample(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def analyze(lines: list[str], **kwargs: object) -> LogAnalysis:
    return analyze_log(ContainerLog(pod="web-1", namespace="shop", container="web", lines=lines), **kwargs)  # type: ignore[arg-type]


def levels(debug: int = 0, info: int = 0, warning: int = 0, error: int = 0, fatal: int = 0) -> dict[str, int]:
    return {"debug": debug, "info": info, "warning": warning, "error": error, "fatal": fatal}


# -- each format ------------------------------------------------------------------------------------


def test_python_logging_with_tracebacks_counts_each_logged_exception_once() -> None:
    a = analyze(sample("python-app.log"))
    assert a.format == "python"
    assert a.lines == 32
    # INFO x4 (starting, 3 healthz), DEBUG, WARNING; ERROR x2 (one with its traceback); CRITICAL with a chain
    assert a.levels == levels(debug=1, info=4, warning=1, error=2, fatal=1)
    assert a.errors == 3
    assert a.first_error == "2026-11-30 12:00:02,500 ERROR app.api: request failed for order 1182"
    assert len(a.stack_traces) == 2
    first, chained = a.stack_traces
    assert first.splitlines()[0] == "Traceback (most recent call last):"
    assert first.splitlines()[-1] == "KeyError: 1182"
    assert len(first.splitlines()) == 8
    # the cause, "The above exception was ...", and the second traceback are one trace
    assert len(chained.splitlines()) == 15
    assert "ConnectionRefusedError: [Errno 111] Connection refused" in chained
    assert chained.splitlines()[-1] == "app.db.DatabaseUnavailable: postgres at 10.0.0.7"
    assert a.stalls == [40.0]  # 12:00:05 -> 12:00:45
    assert a.lines_per_second == pytest.approx(16 / 45.999, abs=0.001)  # lines 0..16 between 00.001 and 46.000
    assert "2026-11-30 12:00:03,000 INFO app.api: GET /healthz 200 (x3)" in a.collapsed
    assert "KeyError: 1182 [python stack trace, 8 lines]" in a.collapsed
    assert len(a.collapsed) == 9


def test_python_basic_config_and_uvicorn_lines() -> None:
    a = analyze(sample("python-uvicorn.log"))
    assert a.format == "python"
    assert a.lines == 18
    assert a.levels == levels(info=5, warning=1, error=2)
    assert a.errors == 2  # "ERROR:    Exception in ASGI application" and its traceback are one
    assert a.first_error == "ERROR:app.payments:charge 9f3c2a1b77 declined"
    assert [t.splitlines()[-1] for t in a.stack_traces] == ["TypeError: string indices must be integers, not 'str'"]
    assert a.lines_per_second is None  # no timestamps
    assert a.stalls == []


def test_an_uncaught_python_traceback_and_an_exception_group_are_errors_of_their_own() -> None:
    a = analyze(sample("python-crash.log"))
    assert a.levels == levels(error=2)
    assert a.errors == 2
    assert a.first_error == "RuntimeError: queue closed"  # a trace on its own: its last line
    assert len(a.stack_traces) == 2
    group = a.stack_traces[1].splitlines()
    assert group[0] == "  + Exception Group Traceback (most recent call last):"
    assert group[-1] == "    +------------------------------------"
    assert len(group) == 17
    assert a.collapsed == [
        "RuntimeError: queue closed [python stack trace, 6 lines]",
        "ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions) [python stack trace, 17 lines]",
        "worker exited",
    ]


def test_klog_levels_and_stall() -> None:
    a = analyze(sample("klog.log"))
    assert a.format == "klog"
    assert a.levels == levels(info=3, warning=1, error=2, fatal=1)
    assert a.errors == 3
    assert a.first_error is not None and a.first_error.startswith("E1130 12:00:02.250000       1 reflector.go:147]")
    assert a.stack_traces == []
    assert a.stalls == [56.75]  # 12:00:03.25 -> 12:01:00
    assert a.lines_per_second == pytest.approx(6 / 65, abs=0.001)
    assert len(a.collapsed) == 7  # the two reflector errors differ in words (Pod, Node): not repeats


def test_go_slog_and_logrus_text_then_a_panic() -> None:
    a = analyze(sample("go-slog-panic.log"))
    assert a.format == "go"
    assert a.lines == 17
    # INFO, DEBUG, WARN, ERROR x3 (slog), info + error (logrus), the panic (fatal)
    assert a.levels == levels(debug=1, info=2, warning=1, error=4, fatal=1)
    assert a.errors == 5  # a panic printed by the runtime is not the logrus line before it
    assert a.first_error == ('time=2026-11-30T12:00:02.000Z level=ERROR msg="upstream call failed" '
                             'err="dial tcp 10.0.3.4:9090: i/o timeout" attempt=1')
    (panic,) = a.stack_traces
    lines = panic.splitlines()
    assert lines[0] == "panic: runtime error: invalid memory address or nil pointer dereference"
    assert "goroutine 1 [running]:" in lines
    assert lines[-1] == "exit status 2"
    assert len(lines) == 9
    # three ERROR lines that differ in time, attempt and IP only
    assert a.collapsed[3].endswith("attempt=1 (x3)")
    assert a.collapsed[-1] == (
        "panic: runtime error: invalid memory address or nil pointer dereference [go stack trace, 9 lines]"
    )
    assert a.lines_per_second == pytest.approx(0.7)  # 8 lines, 0 s .. 10 s
    assert a.stalls == []


def test_a_goroutine_dump_is_one_trace() -> None:
    a = analyze(sample("go-goroutine-dump.log"))
    assert a.format == "go"
    assert a.levels == levels(error=1, fatal=1)
    assert a.first_error == "2026/11/30 12:00:00 [ERROR] lease renew failed: context deadline exceeded"
    (dump,) = a.stack_traces
    assert dump.splitlines()[0] == "SIGQUIT: quit"
    assert dump.splitlines()[-1] == "rflags 0x286"
    assert len(dump.splitlines()) == 25  # every goroutine, the blank lines between them, the registers
    assert a.lines_per_second is None  # both dated lines are the same second


def test_zap_json_and_console() -> None:
    a = analyze(sample("go-zap.log"))
    assert a.format == "json"
    assert a.levels == levels(info=1, warning=1, error=2, fatal=1)  # dpanic is fatal; the console line's ERROR
    assert a.errors == 3
    assert a.stack_traces == ["main/store.(*PG).Query\n\t/app/store/pg.go:120\nmain.main\n\t/app/main.go:55"]
    assert a.lines_per_second == pytest.approx(1.0)  # epoch seconds 0, 1.5, 2, 3 and the console line at 4


def test_pino_level_numbers_and_winston() -> None:
    a = analyze(sample("node-pino-winston.log"))
    assert a.format == "json"
    assert a.levels == levels(debug=1, info=2, warning=1, error=2, fatal=1)  # 30 20 40 50 60, winston error, info
    assert a.errors == 3
    assert a.first_error is not None and '"msg":"redis unavailable"' in a.first_error
    assert a.stack_traces == [
        "Error: connect ECONNREFUSED 10.0.0.9:6379\n"
        "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)"
    ]
    assert a.lines_per_second == pytest.approx(1.2)  # epoch milliseconds, then ISO strings: 6 lines over 5 s


def test_node_errors_and_js_stack_traces() -> None:
    a = analyze(sample("node-crash.log"))
    assert a.format == "node"
    assert a.levels == levels(error=4)  # the ENOENT line and three traces
    assert a.first_error == "Error: ENOENT: no such file or directory, open '/data/cfg.json'"
    refused, type_error, route = a.stack_traces
    assert refused.splitlines()[-1] == "}"  # the error's own properties after its frames
    assert len(refused.splitlines()) == 8
    assert type_error.splitlines()[0] == "TypeError: Cannot read properties of undefined (reading 'id')"
    assert len(route.splitlines()) == 4
    assert "Error: unknown route /admin [node stack trace, 4 lines]" in a.collapsed


def test_spring_boot_with_a_root_cause_and_caused_by() -> None:
    a = analyze(sample("java-spring.log"))
    assert a.format == "java"
    assert a.lines == 31
    assert a.levels == levels(info=3, warning=2, error=2)
    assert a.errors == 2  # each ERROR line and the exception it logged are one
    assert a.first_error is not None
    assert a.first_error.startswith("2026-11-30T12:00:10.006Z ERROR 1 --- [nio-8080-exec-1]")
    root, timeout = a.stack_traces
    assert root.splitlines()[0] == "java.lang.IllegalStateException: order 991 has no lines"
    assert len(root.splitlines()) == 5
    assert "Caused by: java.net.SocketTimeoutException: Read timed out" in timeout.splitlines()
    assert timeout.splitlines()[-1] == "\t... 52 common frames omitted"
    assert len(timeout.splitlines()) == 8
    assert a.stalls == [30.994]  # 12:00:10.006 -> 12:00:41.000
    assert a.lines_per_second == pytest.approx(21 / 41.399, abs=0.001)  # lines 9..30


def test_logback_and_an_uncaught_exception_in_thread_main() -> None:
    a = analyze(sample("java-logback.log"))
    assert a.format == "java"
    assert a.levels == levels(debug=1, info=1, warning=1, error=2)
    assert a.first_error == "12:00:02.000 [pool-1-thread-1] ERROR com.example.worker.Job - job 17 failed"
    logged, uncaught = a.stack_traces
    assert logged.startswith("java.lang.NullPointerException")
    assert uncaught.splitlines() == [
        'Exception in thread "main" java.lang.IllegalArgumentException: queue url must not be empty',
        "\tat com.example.worker.App.main(App.java:12)",
    ]
    assert a.lines_per_second == pytest.approx(3 / 1.999, abs=0.001)


def test_kubectl_timestamps_give_rate_and_stalls_and_are_stripped() -> None:
    a = analyze(sample("kubectl-timestamps.log"))
    assert a.levels == levels(info=1, warning=1, error=2)
    assert a.errors == 2  # the first ERROR and its traceback are one
    assert a.first_error == "ERROR database connection lost"
    assert a.stalls == [45.0, 43.5]  # 12:00:10 -> 12:00:55, 12:00:56.5 -> 12:01:40
    assert a.lines_per_second == pytest.approx(18 / 100.5, abs=0.001)
    assert a.stack_traces[0].splitlines()[-1] == "psycopg.OperationalError: connection is bad: Connection refused"
    assert a.collapsed == [
        "starting api on :8080",
        "GET /api/items/1 200 1ms (x10)",
        "WARN slow response from inventory",
        "ERROR database connection lost",
        "psycopg.OperationalError: connection is bad: Connection refused [python stack trace, 4 lines]",
        "ERROR database connection lost",
        "INFO reconnected",
    ]


def test_the_stall_threshold_is_a_parameter() -> None:
    assert analyze(sample("kubectl-timestamps.log"), stall_seconds=44.0).stalls == [45.0]


def test_more_layouts_one_line_each() -> None:
    cases = {
        "2026-11-30 12:00:00,123 - app.db - ERROR - pool exhausted": ("error", "python"),
        "[2026-11-30 12:00:00 +0000] [1] [ERROR] Worker timeout (pid:9)": ("error", "python"),
        "2026-11-30 12:00:00,123 ERROR [com.example.App] (executor-1) boom": ("error", "java"),
        "30-Nov-2026 12:00:00.123 SEVERE [main] org.apache.catalina.startup.Catalina.start failed": ("error", "java"),
        'time="2026-11-30T12:00:00Z" level=warning msg="disk 91% full"': ("warning", "go"),
        '{"severity":"ERROR","message":"quota exceeded","time":"2026-11-30T12:00:00Z"}': ("error", "json"),
        '{"levelname":"CRITICAL","message":"out of memory"}': ("fatal", "json"),
        '{"log.level":"warn","message":"retrying"}': ("warning", "json"),
        '{"level":50,"time":1796040000000,"msg":"cut short by the capture, no closing': ("error", "json"),
        "[WARN] cache is cold": ("warning", "plain"),
        "CRITICAL disk failure on /dev/sda": ("fatal", "plain"),
        "panic: assignment to entry in nil map": ("fatal", "go"),
        "java.lang.OutOfMemoryError: Java heap space": ("error", "java"),
        "I1130 12:00:00.000000       1 main.go:10] ok": ("info", "klog"),
    }
    for line, (level, fmt) in cases.items():
        a = analyze([line])
        assert (a.levels[level], a.format) == (1, fmt), line


def test_plain_lines_have_no_level() -> None:
    a = analyze(["hello", "listening on :8080", "0 errors so far"])
    assert a.levels == levels()
    assert a.errors == 0 and a.first_error is None
    assert a.format == "plain"


def test_the_empty_log() -> None:
    a = analyze([])
    assert (a.lines, a.errors, a.collapsed, a.stack_traces, a.lines_per_second) == (0, 0, [], [], None)


# -- bounds -----------------------------------------------------------------------------------------


def test_collapsed_keeps_the_head_and_the_tail() -> None:
    lines = [f"event {'abcdefghijklmnopqrstuvwxyz'[i % 26]}{'xyz'[i % 3]} happened" for i in range(1000)]
    a = analyze(lines)
    assert len(a.collapsed) == MAX_COLLAPSED
    assert a.collapsed[0] == lines[0]
    assert a.collapsed[-1] == lines[-1]
    assert a.collapsed[50] == "... 901 more entries ..."


def test_repeats_that_differ_in_ids_and_hex_collapse() -> None:
    a = analyze([
        "GET /api/orders/7f3a9c2e-1b2d-4c5e-8f90-123456789abc 200 12ms",
        "GET /api/orders/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 200 7ms",
        "pod web-7d9f8b6c5-x2k4q ready at 0x1f",
        "pod web-7d9f8b6c5-p9z8w ready at 0xa3",
        "pod web-7d9f8b6c5-p9z8w ready at 0xa3",
    ])
    assert a.collapsed == [
        "GET /api/orders/7f3a9c2e-1b2d-4c5e-8f90-123456789abc 200 12ms (x2)",
        "pod web-7d9f8b6c5-x2k4q ready at 0x1f (x3)",
    ]


def test_a_10000_line_log_is_read_in_well_under_100_ms() -> None:
    mixed = [line for name in sorted(p.name for p in FIXTURES.glob("*.log")) for line in sample(name)]
    lines = (mixed * (10_000 // len(mixed) + 1))[:10_000]
    log = ContainerLog(pod="p", namespace="n", container="c", lines=lines)
    best = min(_cpu_seconds(lambda: analyze_log(log)) for _ in range(3))
    assert best < 0.1, f"{best * 1000:.0f} ms of CPU for 10,000 lines"


def test_pathological_lines_cost_time_linear_in_their_length() -> None:
    hostile = [
        "a" * 200_000,
        "{" * 100_000 + "}",
        '{"a":' * 50_000 + "1" + "}" * 50_000,  # nesting deeper than any parser recursion limit
        "level=" * 50_000,
        ' msg="\\' * 30_000,
        "Error: " + "x" * 100_000,
        "E1130 " + "1" * 100_000,
        "2026-11-30 12:00:00,123 " + "-" * 100_000,
        "12:00:00.123 [" + "x" * 100_000,
        "[" * 100_000,
        "a1" * 100_000,
        "\tat " * 50_000,
        "goroutine 1 " + "x" * 100_000,
        "java." * 50_000 + "Exception",
        "Traceback (most recent call last):",
        *(["  File x"] * 5_000),
        *(["panic: x", "[signal SIGSEGV]"] * 2_500),  # panics with no goroutine: each try gives up early
        *(["Traceback (most recent call last):", ""] * 2_500),
    ]
    seconds = _cpu_seconds(lambda: analyze(hostile, templates=None))
    assert seconds < 1.0, f"{seconds:.2f} s for {sum(map(len, hostile))} characters"


def test_templates_are_mined_from_error_lines_and_trace_headlines(tmp_path: Path) -> None:
    templates = ErrorTemplates(tmp_path)
    a = analyze(sample("python-app.log"), templates=templates)
    mined = {t.template: (t.count, t.new) for t in a.templates}
    assert mined == {
        "request failed for order <NUM>": (1, True),
        "KeyError: <NUM>": (1, True),
        "job <NUM> failed: connection to <IP> refused": (1, True),
        "giving up after <NUM> retries": (1, True),
        "app.db.DatabaseUnavailable: postgres at <IP>": (1, True),
    }
    again = analyze(sample("python-app.log"), templates=templates)
    assert {t.template for t in again.templates} == set(mined)
    assert not any(t.new for t in again.templates)


def test_without_errors_nothing_is_mined(tmp_path: Path) -> None:
    a = analyze(["INFO all good"], templates=ErrorTemplates(tmp_path))
    assert a.templates == []
    assert not (tmp_path / "observe" / "templates.json").exists()


def _cpu_seconds(fn: object) -> float:
    start = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - start
