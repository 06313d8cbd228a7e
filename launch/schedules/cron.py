"""Cron expressions: the standard 5-field form of schedules.yaml, KFP's 6-field form (seconds
first, robfig/cron) and Vertex AI's 5-field form with a ``TZ=`` prefix.

Parsing and range checks are cronsim's (the parser healthchecks.io runs, with Debian cron's
semantics and no dependencies; croniter accepts backwards ranges such as ``30-10`` and Quartz
``?``/``L`` without complaint, so it would not catch what we must refuse). What stays here is
what cronsim cannot know: which forms KFP's robfig/cron and Vertex both read.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo

import cronsim

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
# (name in cronsim's messages, our name, what the field takes)
_FIELDS = (
    ("minute", "minute", "0-59"),
    ("hour", "hour", "0-23"),
    ("day-of-month", "day of month", "1-31 (a day the months given have)"),
    ("month", "month", "1-12 or JAN-DEC"),
    ("day-of-week", "day of week", "0-7 or SUN-SAT (0 and 7 are Sunday)"),
)
# Quartz extensions (cronsim reads some of them, robfig/cron v1 and Vertex do not).
_QUARTZ = re.compile(r"[?LW#]")
_NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT")
_AS_WRITTEN = re.compile(r"^\*(/\d+)?$")


def normalize_cron(expression: str) -> str:
    """Validates a standard 5-field cron and returns it in a form KFP and Vertex both read.

    Macros (@daily, @hourly, ...) are expanded. ``*`` and ``*/N`` stay as written; any other
    field is written out from the parsed values as numbers (names become numbers, and
    day-of-week 7 becomes 0, because KFP's parser, robfig/cron, only takes 0-6), so a field
    that restricted the days still restricts them (cron combines day-of-month and day-of-week
    differently when one of them starts with ``*``).

    Raises:
        CronError: not 5 fields (6-field KFP input included), Quartz syntax, a time zone
            prefix, or a field cronsim refuses (out of range, backwards range, bad step).
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
    for value, (_, name, _) in zip(fields, _FIELDS, strict=True):
        if _QUARTZ.search(_NAMES.sub("", value.upper())):
            raise CronError(
                f"cron {expression!r}: {name} field {value!r} is Quartz syntax ('?', 'L', 'W', "
                "'#'), which KFP and Vertex do not read; use numbers, names, '*', ',', '-', '/'"
            )
    try:
        parsed = cronsim.CronSim(text, datetime.datetime(2000, 1, 1))
    except cronsim.CronSimError as exc:
        raise _field_error(expression, fields, str(exc)) from exc
    values = (parsed.minutes, parsed.hours, parsed.days, parsed.months,
              {0 if day == 7 else day for day in parsed.weekdays})
    return " ".join(
        field if _AS_WRITTEN.match(field) else _render(sorted(parsed_values))
        for field, parsed_values in zip(fields, values, strict=True)
    )


def _field_error(expression: str, fields: list[str], message: str) -> CronError:
    """cronsim says only "Bad <field>"; name the field's text and what it takes."""
    for value, (cronsim_name, name, accepted) in zip(fields, _FIELDS, strict=True):
        if message.lower().endswith(cronsim_name):
            return CronError(
                f"cron {expression!r}: {name} field {value!r} is invalid; it takes {accepted}, "
                "'*', lists 'a,b', ranges 'low-high' (not backwards) and steps '/n' (n >= 1)"
            )
    return CronError(f"cron {expression!r}: {message}")


def _render(values: list[int]) -> str:
    """Sorted values as a cron list, runs of three or more as ranges: [0,1,2,5] -> '0-2,5'."""
    parts, start = [], 0
    for index in range(1, len(values) + 1):
        if index == len(values) or values[index] != values[index - 1] + 1:
            run = values[start:index]
            parts += [f"{run[0]}-{run[-1]}"] if len(run) >= 3 else [str(v) for v in run]
            start = index
    return ",".join(parts)


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
