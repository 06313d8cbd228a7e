"""What every benchmark's Markdown report starts with: its title, when, on which machine and by
which command (these machines are shared and noisy: a figure names where it was measured)."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path


def machine() -> str:
    """OS and architecture, cores and CPU model, Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def header(title: str, command: str) -> list[str]:
    """The report's first lines; each benchmark adds its own details below them."""
    return [
        f"# {title}",
        "",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- machine: {machine()}",
        f"- command: `{command.strip()}`",
    ]
