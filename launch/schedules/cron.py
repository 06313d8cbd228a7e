"""Cron expressions: the standard 5-field form of schedules.yaml, KFP's 6-field form (seconds
first, robfig/cron) and Vertex AI's 5-field form with a ``TZ=`` prefix."""

from __future__ import annotations

import re
import zoneinfo

from launch.schedules import ScheduleError


class CronError(ScheduleError):
    """A cron expression this tool cannot translate faithfully."""


MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# (name, low, high, names); day of week accepts 0-7 (0 and 7 are Sunday) on input.
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def normalize_cron(expression: str) -> str:
    """Validates a standard 5-field cron and returns it in a form KFP and Vertex both read.

    Macros (@daily, @hourly, ...) are expanded, month and weekday names become numbers, and
    day-of-week 7 (Sunday) becomes 0, because KFP's parser (robfig/cron) only takes 0-6.
    Everything else is kept as written.

    Raises:
        CronError: not 5 fields (6-field KFP input included), or a field out of range.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise CronError(f"cron must be a non-empty string like '0 3 * * *', got {expression!r}")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(
                f"cron {expression!r}: unsupported macro; use one of {', '.join(MACROS)} or 5 fields"
            )
        text = MACROS[text.lower()]
    if re.match(r"^(CRON_)?TZ=", text, re.IGNORECASE):
        raise CronError(f"cron {expression!r}: put the time zone in the entry's 'timezone' key")
    fields = text.split(" ")
    if len(fields) == 6:
        raise CronError(
            f"cron {expression!r} has 6 fields; schedules.yaml takes the standard 5-field form "
            "(minute hour day-of-month month day-of-week). The seconds field KFP wants is added "
            "for you, e.g. '0 3 * * *' -> KFP '0 0 3 * * *'"
        )
    if len(fields) != 5:
        raise CronError(
            f"cron {expression!r} has {len(fields)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    pairs = zip(fields, _FIELDS, strict=True)
    return " ".join(_normalize_field(value, *spec, expression=expression) for value, spec in pairs)


def _normalize_field(text, name, low, high, names, *, expression):
    def fail(reason):
        return CronError(f"cron {expression!r}: {name} field {text!r}: {reason}")

    def number(token, *, range_end=False):
        upper = token.upper()
        if names and upper in names:
            value = names[upper]
            return 7 if range_end and names is _DAYS and value == 0 else value
        if not token.isdigit():
            if token in ("?", "L", "W") or "#" in token or upper.endswith(("L", "W")):
                raise fail(f"{token!r} is not standard cron (Quartz syntax); use numbers, '*', ',', '-', '/'")
            raise fail(f"{token!r} is not a number" + (" or a name" if names else ""))
        value = int(token)
        if not low <= value <= high:
            raise fail(f"{value} is out of range {low}-{high}")
        return value

    out = []
    for part in text.split(","):
        if not part:
            raise fail("empty list element")
        base, slash, step_text = part.partition("/")
        step = None
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise fail(f"step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            out.append(part)
            continue
        if "-" in base:
            first, _, last = base.partition("-")
            start, end = number(first), number(last, range_end=True)
            if start > end:
                raise fail(f"range {base!r} runs backwards")
        else:
            if step is not None:
                raise fail(f"a step needs a range or '*', e.g. '{base}-{high}/{step}' or '*/{step}'")
            start = end = number(base)
        values = list(range(start, end + 1, step or 1))
        if names is _DAYS and 7 in values:
            # Sunday as 7: list the days explicitly (0-6 only) rather than widening to '*',
            # which would change how day-of-month and day-of-week combine.
            out.extend(str(v) for v in sorted({0 if v == 7 else v for v in values}))
        elif start == end:
            out.append(str(start))
        else:
            out.append(f"{start}-{end}" + (f"/{step}" if step else ""))
    return ",".join(dict.fromkeys(out))


def to_kfp_cron(expression: str) -> str:
    """KFP's 6-field, seconds-first cron (robfig/cron) for a 5-field expression."""
    return f"0 {normalize_cron(expression)}"


def to_vertex_cron(expression: str, timezone: str | None = None) -> str:
    """Vertex AI's 5-field cron, with ``TZ=<zone>`` in front when a time zone is given."""
    cron = normalize_cron(expression)
    if timezone:
        check_timezone(timezone)
        return f"TZ={timezone} {cron}"
    return cron


def check_timezone(timezone: str) -> None:
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from exc
