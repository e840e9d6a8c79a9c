"""`pytest benchmarks/`: speed ratios and learning results, recorded to benchmarks/results/."""

import json
import pathlib
import time

import pytest

RESULTS = pathlib.Path(__file__).parent / "results"


def pytest_addoption(parser):
    parser.addoption("--budget", type=float, default=1.0, help="scale every benchmark's environment steps")
    parser.addoption("--seeds", type=int, default=None, help="seeds for learning benchmarks (default: each one's)")


@pytest.fixture
def budget(request) -> float:
    return request.config.getoption("--budget")


@pytest.fixture
def seeds(request):
    return request.config.getoption("--seeds")


@pytest.fixture
def record(request):
    """Write a benchmark's numbers to results/<name>.json and append a Markdown row to results/table.md."""

    def write(name: str, numbers: dict) -> None:
        RESULTS.mkdir(exist_ok=True)
        numbers = {"benchmark": name, "time": time.strftime("%Y-%m-%d %H:%M"), **numbers}
        (RESULTS / f"{name}.json").write_text(json.dumps(numbers, indent=2))
        with open(RESULTS / "table.md", "a") as f:
            f.write(f"| {name} | " + ", ".join(f"{k}={v}" for k, v in numbers.items() if k not in ("benchmark",))
                    + " |\n")
        print(json.dumps(numbers, indent=2))

    return write
